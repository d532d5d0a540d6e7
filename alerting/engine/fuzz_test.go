package engine

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzParams: the query API's time and duration parameters take any string without a panic,
// and what they accept is within range.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "0", "1.5", "-1e13", "1e400", "NaN", "2026-12-03T10:00:00Z", "5m", "1y2w", "-5s", "1e18"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ts, err := parseTime(s, timeZero); err == nil && (ts.Year() < -400000 || ts.Year() > 400000) {
			t.Fatalf("time %q out of range: %s", s, ts)
		}
		if d, err := parseDuration(s); err == nil && d < -1<<62 {
			t.Fatalf("duration %q out of range: %d", s, d)
		}
	})
}

// FuzzQueryAPI: arbitrary query strings and parameters get a JSON answer, never a panic.
func FuzzQueryAPI(f *testing.F) {
	e, srv := startForFuzz(f)
	defer func() {
		srv.Close()
		_ = e.Stop()
	}()
	for _, s := range []string{"up", "sum(rate(x[5m])) by (job)", "{", "a @ end()", "x[5m:1s] offset -1h", "max_over_time(x[5m:])", `{__name__=~".+"}`} {
		f.Add(s, "0", "60", "15")
	}
	f.Fuzz(func(t *testing.T, query, start, end, step string) {
		for _, path := range []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels"} {
			q := url.Values{"query": {query}, "start": {start}, "end": {end}, "step": {step}, "time": {start}, "match[]": {query}}
			req := httptest.NewRequest(http.MethodGet, path+"?"+q.Encode(), nil)
			w := httptest.NewRecorder()
			srv.Config.Handler.ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 400 && w.Code != 422 && w.Code != 503 {
				t.Fatalf("%s %v: %d %s", path, q, w.Code, w.Body)
			}
		}
	})
}
