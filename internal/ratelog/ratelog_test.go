package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := slog.New(slog.NewTextHandler(&buf, nil))
		r := Limiter{Every: time.Minute}
		for range 5 {
			r.Warn(l, "bad", "items", 1)
		}
		if n := strings.Count(buf.String(), "msg=bad"); n != 1 {
			t.Fatalf("logged %d times within the interval, want 1:\n%s", n, buf.String())
		}
		time.Sleep(time.Minute)
		r.Warn(l, "bad", "items", 2)
		if !strings.Contains(buf.String(), "items=2 suppressed_since_last=4") {
			t.Fatalf("second log does not count the suppressed ones:\n%s", buf.String())
		}
	})
}
