package logparse

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Fields are what a parser found in a line: names to values (strings, numbers, booleans, or
// nested maps and lists for JSON).
type Fields map[string]any

// JSON parses a line holding a JSON object.
func JSON(line string) (Fields, error) {
	var f map[string]any
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&f); err != nil || f == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return f, nil
}

// Logfmt parses key=value pairs separated by spaces; values may be "quoted" with \" escapes,
// and a key alone is true.
func Logfmt(line string) (Fields, error) {
	f := Fields{}
	s := line
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		end := strings.IndexAny(s, "= \t")
		if end == 0 {
			return nil, fmt.Errorf("%w: logfmt: a value without a key at %q", ErrMalformed, trunc([]byte(s)))
		}
		if end < 0 {
			f[s] = true
			break
		}
		key := s[:end]
		s = s[end:]
		if s[0] != '=' {
			f[key] = true
			continue
		}
		s = s[1:]
		if strings.HasPrefix(s, `"`) {
			var v strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						v.WriteByte('\n')
					case 't':
						v.WriteByte('\t')
					default:
						v.WriteByte(s[i])
					}
					continue
				}
				v.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: logfmt: unterminated quoted value of %s", ErrMalformed, key)
			}
			f[key] = v.String()
			s = s[i+1:]
			continue
		}
		sp := strings.IndexAny(s, " \t")
		if sp < 0 {
			f[key] = s
			break
		}
		f[key] = s[:sp]
		s = s[sp:]
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: logfmt: no key=value pair", ErrMalformed)
	}
	return f, nil
}

// Regex parses lines with a regular expression's named groups.
type Regex struct{ re *regexp.Regexp }

// NewRegex compiles a pattern that has at least one named group.
func NewRegex(pattern string) (*Regex, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	named := 0
	for _, n := range re.SubexpNames() {
		if n != "" {
			named++
		}
	}
	if named == 0 {
		return nil, fmt.Errorf("regex %q has no named group ((?P<name>...))", pattern)
	}
	return &Regex{re: re}, nil
}

// Parse matches the line; a line that does not match is an error.
func (r *Regex) Parse(line string) (Fields, error) {
	m := r.re.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("%w: the line does not match %s", ErrMalformed, r.re)
	}
	f := Fields{}
	for i, n := range r.re.SubexpNames() {
		if n != "" && m[i] != "" {
			f[n] = m[i]
		}
	}
	return f, nil
}

// ParseTime reads a timestamp field by layout: rfc3339 (also with nanoseconds), unix, unix_ms,
// unix_us, unix_ns (numbers or numeric strings), or a Go layout.
func ParseTime(v any, layout string) (time.Time, error) {
	s := fmt.Sprint(v)
	if n, ok := v.(json.Number); ok {
		s = n.String()
	}
	unix := func(scale float64) (time.Time, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q is not a number", s)
		}
		ns := f * scale
		if math.IsNaN(ns) || ns < math.MinInt64 || ns >= math.MaxInt64 {
			return time.Time{}, fmt.Errorf("timestamp %q is out of range (years 1678 to 2262)", s)
		}
		return time.Unix(0, int64(ns)).UTC(), nil
	}
	switch layout {
	case "", "rfc3339":
		return time.Parse(time.RFC3339Nano, s)
	case "unix":
		return unix(1e9)
	case "unix_ms":
		return unix(1e6)
	case "unix_us":
		return unix(1e3)
	case "unix_ns":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp %q is not a number", s)
		}
		return time.Unix(0, n).UTC(), nil
	}
	return time.Parse(layout, s)
}

// Severity maps a level text to its number (1 TRACE … 21 FATAL) as OpenTelemetry does; 0 when
// unknown.
func Severity(text string) int {
	t := strings.ToLower(strings.TrimSpace(text))
	switch {
	case t == "":
		return 0
	case strings.HasPrefix(t, "trace"):
		return 1
	case strings.HasPrefix(t, "debug") || t == "dbg":
		return 5
	case strings.HasPrefix(t, "info") || t == "inf" || t == "notice":
		return 9
	case strings.HasPrefix(t, "warn") || t == "wrn":
		return 13
	case strings.HasPrefix(t, "err") || t == "critical" || t == "crit" || t == "alert":
		return 17
	case strings.HasPrefix(t, "fatal") || t == "panic" || t == "emerg" || t == "emergency":
		return 21
	}
	if n, err := strconv.Atoi(t); err == nil && n >= 1 && n <= 24 {
		return n
	}
	return 0
}

// ValidUTF8 returns s with invalid UTF-8 replaced by U+FFFD (Loki and most backends refuse
// invalid strings), and whether it had to.
func ValidUTF8(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	return strings.ToValidUTF8(s, "\uFFFD"), true
}
