package syslog

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestRFC5424(t *testing.T) {
	// The examples of RFC 5424, section 6.5.
	m, err := Parse([]byte("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick on /dev/pts/8"), now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Facility() != 4 || m.Severity() != 2 || m.Version != 1 || m.Hostname != "mymachine.example.com" || m.AppName != "su" ||
		m.ProcID != "" || m.MsgID != "ID47" || m.Message != "'su root' failed for lonvick on /dev/pts/8" ||
		!m.Timestamp.Equal(time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC)) {
		t.Errorf("%+v", m)
	}
	m, err = Parse([]byte(`<165>1 2003-10-11T22:14:15.003-07:00 host evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" q="a \"quoted\] v"] An application event`), now)
	if err != nil {
		t.Fatal(err)
	}
	if m.StructuredData["exampleSDID@32473"]["eventID"] != "1011" || m.StructuredData["examplePriority@32473"]["q"] != `a "quoted] v` ||
		m.Message != "An application event" || m.Severity() != 5 {
		t.Errorf("%+v", m)
	}
	m, err = Parse([]byte("<13>1 - - - - - -"), now)
	if err != nil || m.Message != "" || !m.Timestamp.IsZero() {
		t.Errorf("all nil: %+v %v", m, err)
	}
}

func TestRFC3164(t *testing.T) {
	for _, tc := range []struct {
		in                      string
		host, app, pid, message string
		ts                      time.Time
	}{
		{"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", "mymachine", "su", "", "'su root' failed for lonvick on /dev/pts/8",
			time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC)},
		{"<13>Dec  3 11:59:00 node-1 sshd[4242]: Accepted publickey", "node-1", "sshd", "4242", "Accepted publickey", time.Date(2026, 12, 3, 11, 59, 0, 0, time.UTC)},
		{"<13>Dec 31 23:59:59 h cron: from last year", "h", "cron", "", "from last year", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"<14>no header at all", "", "", "", "no header at all", time.Time{}},
	} {
		m, err := Parse([]byte(tc.in), now)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if m.Version != 0 || m.Hostname != tc.host || m.AppName != tc.app || m.ProcID != tc.pid || m.Message != tc.message || !m.Timestamp.Equal(tc.ts) {
			t.Errorf("%s: %+v", tc.in, m)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{"", "no priority", "<>1 x", "<192>1 - - - - - -", "<013>x", "<1x>y",
		"<13>1 yesterday host app - - - msg", "<13>1 - host", "<13>1 - h a p m [id x=\"1\"", "<13>1 - h a p m [id x=1]",
		"<13>1 - h a p m [id]msg", "<13>1 - h\x01 a p m -"} {
		if _, err := Parse([]byte(in), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", in, err)
		}
	}
}

func TestFramer(t *testing.T) {
	stream := "11 <13>1 - - -\n<14>newline framed\r\n\n" + "5 <15>x" + "<16>last, no newline"
	f := NewFramer(strings.NewReader(stream), 100)
	var got []string
	for {
		b, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimRight(string(b), "\r\n"))
	}
	want := []string{"<13>1 - - -", "<14>newline framed", "<15>x", "<16>last, no newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("frames %q, want %q", got, want)
	}
	if _, err := NewFramer(strings.NewReader("999999 <13>x"), 1000).Next(); !errors.Is(err, ErrTooLong) {
		t.Errorf("an octet count over the limit: %v", err)
	}
	if _, err := NewFramer(strings.NewReader("<13>"+strings.Repeat("x", 200000)+"\n"), 1000).Next(); !errors.Is(err, ErrTooLong) {
		t.Errorf("a line over the limit: %v", err)
	}
	if _, err := NewFramer(strings.NewReader("20 <13>short"), 1000).Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a truncated frame: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - msg",
		`<165>1 2003-10-11T22:14:15.003-07:00 host evntslog - ID47 [a@1 x="1"] m`, "<13>Dec  3 11:59:00 node-1 sshd[1]: m"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, now)
		if err == nil && (m.Priority < 0 || m.Priority > 191) {
			t.Fatalf("priority %d accepted", m.Priority)
		}
	})
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("11 <13>1 - - -\n<14>x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFramer(strings.NewReader(string(b)), 512)
		for range 1000 {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			if len(frame) > 513 {
				t.Fatalf("a frame of %d bytes over the limit", len(frame))
			}
		}
	})
}
