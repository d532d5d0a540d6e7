// Package syslog parses syslog messages, RFC 5424 and RFC 3164 (the BSD format), and the two
// TCP framings of RFC 6587: octet counting and newline-delimited.
package syslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Message is one parsed message. Fields a message leaves out ("-" in RFC 5424) are empty.
type Message struct {
	Priority  int // facility × 8 + severity
	Version   int // 1 for RFC 5424, 0 for RFC 3164
	Timestamp time.Time
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	// StructuredData maps each SD-ID to its parameters.
	StructuredData map[string]map[string]string
	Message        string
}

// Facility and Severity of the message.
func (m *Message) Facility() int { return m.Priority / 8 }
func (m *Message) Severity() int { return m.Priority % 8 }

// Severities are the names of the eight severities, by number.
var Severities = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// ErrMalformed is returned for a message that is neither RFC 5424 nor RFC 3164.
var ErrMalformed = errors.New("malformed syslog message")

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Parse reads one message: RFC 5424 when the priority is followed by version 1, RFC 3164
// otherwise. now gives the year and zone of an RFC 3164 timestamp, which has neither.
func Parse(b []byte, now time.Time) (*Message, error) {
	s := strings.TrimRight(string(b), "\r\n\x00")
	pri, rest, err := priority(s)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(rest, "1 ") {
		return parse5424(pri, rest[2:])
	}
	return parse3164(pri, rest, now), nil
}

func priority(s string) (int, string, error) {
	if !strings.HasPrefix(s, "<") {
		return 0, "", bad("no <priority> at the start")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return 0, "", bad("the priority is 1 to 3 digits in <>")
	}
	p, err := strconv.Atoi(s[1:end])
	if err != nil || p < 0 || p > 191 || (len(s[1:end]) > 1 && s[1] == '0') {
		return 0, "", bad("priority %q: 0 to 191", s[1:end])
	}
	return p, s[end+1:], nil
}

// field takes a space-terminated field of at most max printable ASCII characters ("-": empty).
func field(s *string, name string, max int) (string, error) {
	i := strings.IndexByte(*s, ' ')
	var v string
	if i < 0 {
		v, *s = *s, ""
	} else {
		v, *s = (*s)[:i], (*s)[i+1:]
	}
	if v == "" {
		return "", bad("%s is missing", name)
	}
	if len(v) > max {
		return "", bad("%s is over %d characters", name, max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 33 || v[i] > 126 {
			return "", bad("%s holds a character that is not printable ASCII", name)
		}
	}
	if v == "-" {
		return "", nil
	}
	return v, nil
}

func parse5424(pri int, s string) (*Message, error) {
	m := &Message{Priority: pri, Version: 1}
	ts, err := field(&s, "TIMESTAMP", 64)
	if err != nil {
		return nil, err
	}
	if ts != "" {
		if m.Timestamp, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, bad("TIMESTAMP %q is not RFC 3339", ts)
		}
	}
	for _, f := range []struct {
		dst  *string
		name string
		max  int
	}{{&m.Hostname, "HOSTNAME", 255}, {&m.AppName, "APP-NAME", 48}, {&m.ProcID, "PROCID", 128}, {&m.MsgID, "MSGID", 32}} {
		if *f.dst, err = field(&s, f.name, f.max); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else if m.StructuredData, s, err = structuredData(s); err != nil {
		return nil, err
	}
	switch {
	case s == "":
	case s[0] == ' ':
		m.Message = strings.TrimPrefix(s[1:], "\ufeff")
	default:
		return nil, bad("no space between STRUCTURED-DATA and MSG")
	}
	return m, nil
}

func structuredData(s string) (map[string]map[string]string, string, error) {
	sd := map[string]map[string]string{}
	for strings.HasPrefix(s, "[") {
		s = s[1:]
		end := strings.IndexAny(s, " ]")
		if end <= 0 {
			return nil, "", bad("an SD-ELEMENT without an SD-ID")
		}
		id := s[:end]
		s = s[end:]
		params := map[string]string{}
		for strings.HasPrefix(s, " ") {
			s = s[1:]
			eq := strings.Index(s, `="`)
			if eq <= 0 {
				return nil, "", bad("SD-PARAM in [%s] is not name=\"value\"", id)
			}
			name := s[:eq]
			s = s[eq+2:]
			var v strings.Builder
			i := 0
			for ; i < len(s); i++ {
				c := s[i]
				if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == ']') {
					i++
					v.WriteByte(s[i])
					continue
				}
				if c == '"' {
					break
				}
				v.WriteByte(c)
			}
			if i >= len(s) {
				return nil, "", bad("unterminated SD-PARAM value in [%s]", id)
			}
			params[name] = v.String()
			s = s[i+1:]
		}
		if !strings.HasPrefix(s, "]") {
			return nil, "", bad("SD-ELEMENT [%s] is not closed", id)
		}
		s = s[1:]
		sd[id] = params
	}
	if len(sd) == 0 {
		return nil, "", bad("STRUCTURED-DATA is neither - nor [...]")
	}
	return sd, s, nil
}

// parse3164 reads the BSD format leniently, as relays do: a timestamp ("Jan _2 15:04:05") and
// a hostname when present, a tag up to ':' or '[', the rest the message.
func parse3164(pri int, s string, now time.Time) *Message {
	m := &Message{Priority: pri}
	if len(s) >= 16 && s[15] == ' ' {
		if t, err := time.ParseInLocation(time.Stamp, s[:15], now.Location()); err == nil {
			t = t.AddDate(now.Year(), 0, 0)
			if t.After(now.Add(24 * time.Hour)) { // December's message read in January
				t = t.AddDate(-1, 0, 0)
			}
			m.Timestamp = t
			s = s[16:]
			if i := strings.IndexByte(s, ' '); i > 0 && !strings.ContainsAny(s[:i], ":[") {
				m.Hostname, s = s[:i], s[i+1:]
			}
		}
	}
	if i := strings.IndexAny(s, ":[ "); i > 0 && i <= 48 && (s[i] == ':' || s[i] == '[') {
		m.AppName = s[:i]
		s = s[i:]
		if s[0] == '[' {
			if j := strings.IndexByte(s, ']'); j > 0 {
				m.ProcID = s[1:j]
				s = s[j+1:]
			}
		}
		s = strings.TrimPrefix(s, ":")
		s = strings.TrimPrefix(s, " ")
	}
	m.Message = s
	return m
}

// Framer reads messages from a TCP stream: octet counting ("LEN SP MSG", RFC 6587 3.4.1) when
// a frame starts with a digit, newline-delimited otherwise.
type Framer struct {
	r   *bufio.Reader
	max int
}

// NewFramer reads frames of at most max bytes from r.
func NewFramer(r io.Reader, max int) *Framer {
	return &Framer{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ErrTooLong is returned for a frame over the limit; the stream cannot be read further.
var ErrTooLong = errors.New("syslog frame over the limit")

// Next returns the next frame (valid until the next call), io.EOF at the end of the stream.
func (f *Framer) Next() ([]byte, error) {
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == '\n' || c == '\r' || c == ' ' || c == 0 {
			continue // blank between frames
		}
		if c >= '1' && c <= '9' {
			n := int(c - '0')
			for {
				c, err = f.r.ReadByte()
				if err != nil {
					return nil, io.ErrUnexpectedEOF
				}
				if c == ' ' {
					break
				}
				if c < '0' || c > '9' {
					return nil, bad("octet count is not a number")
				}
				if n = n*10 + int(c-'0'); n > f.max {
					return nil, fmt.Errorf("%w: %d bytes or more, the limit is %d", ErrTooLong, n, f.max)
				}
			}
			if n > f.max {
				return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLong, n, f.max)
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(f.r, buf); err != nil {
				return nil, io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err := f.r.UnreadByte(); err != nil {
			return nil, err
		}
		var line []byte
		for {
			chunk, err := f.r.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > f.max+1 {
				return nil, fmt.Errorf("%w: a line over %d bytes", ErrTooLong, f.max)
			}
			if err == nil {
				return line, nil
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
	}
}
