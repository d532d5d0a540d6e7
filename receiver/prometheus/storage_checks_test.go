package prometheus

import (
	"fmt"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/prometheus/config"
)

// TestScrapeFailsAsPrometheusStorageWould: what Prometheus's head refuses (duplicate label
// names) fails the scrape here too, and the limits of the scrape config apply. A failed scrape
// reports up 0 and sends none of its series.
func TestScrapeFailsAsPrometheusStorageWould(t *testing.T) {
	for _, tc := range []struct {
		name, extra, body, log string
	}{
		{name: "duplicate label name", body: "ok 1\ntest{a=\"1\",a=\"1\"} 1\n", log: `label name \"a\" is not unique`},
		{name: "duplicate with different values", body: "test{a=\"1\",a=\"2\"} 1\n", log: `label name \"a\" is not unique`},
		{name: "label_limit", extra: "label_limit: 2", body: "test{a=\"1\",b=\"2\"} 1\n", log: "label_limit exceeded"},
		{name: "label_name_length_limit", extra: "label_name_length_limit: 3", body: "test{long_name=\"1\"} 1\n", log: "label_name_length_limit exceeded"},
		{name: "label_value_length_limit", extra: "label_value_length_limit: 3", body: "test{a=\"long value\"} 1\n", log: "label_value_length_limit exceeded"},
		{name: "invalid UTF-8 value", body: "test{a=\"\xff\xfe\"} 1\n", log: "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.body)
			ru := start(t, oneJob("", tc.extra, tg.addr()))
			inst := tg.addr()
			_, s := ru.waitScrape("up 0", 0, has(up("app", inst), 0))
			for _, x := range s.samples {
				if !strings.Contains(x.labels, `__name__="scrape_`) && !strings.Contains(x.labels, `__name__="up"`) {
					t.Errorf("the failed scrape sent %s %v", x.labels, x.value)
				}
			}
			if !strings.Contains(ru.logs.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, ru.logs.String())
			}
		})
	}
}

// TestEmptyLabelValuesAreNoLabels: as in Prometheus's storage, a label with an empty value is
// not stored (nor sent), and a series left without labels is refused.
func TestEmptyLabelValuesAreNoLabels(t *testing.T) {
	tg := newTarget(t, "test{a=\"\",b=\"x\"} 1\n")
	ru := start(t, oneJob("", "", tg.addr()))
	ru.waitScrape("test without a", 0, has(series("test", "app", tg.addr(), "b", "x"), 1))
}

// TestTargetsWithoutAKnownContentType: a target served by a plain web server (a file, no or an
// unknown Content-Type) is scraped in the classic text format unless the job or the receiver
// says otherwise; "none" keeps Prometheus's refusal.
func TestTargetsWithoutAKnownContentType(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, receiverKey, jobKey string
		want                                   float64 // up
	}{
		{name: "octet-stream", contentType: "application/octet-stream", want: 1},
		{name: "no content type", contentType: "", want: 1},
		{name: "receiver none", contentType: "application/octet-stream", receiverKey: "fallback_scrape_protocol: none", want: 0},
		{name: "job overrides none", contentType: "application/octet-stream", receiverKey: "fallback_scrape_protocol: none", jobKey: "fallback_scrape_protocol: PrometheusText0.0.4", want: 1},
		{name: "job's wrong guess", contentType: "", jobKey: "fallback_scrape_protocol: PrometheusProto", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, "# TYPE m gauge\nm 3\n")
			tg.contentType = tc.contentType
			ru := start(t, oneJob(tc.receiverKey, tc.jobKey, tg.addr()))
			inst := tg.addr()
			_, s := ru.waitScrape("up", 0, func(s scraped) bool { _, ok := s.find(up("app", inst)); return ok })
			if x, _ := s.find(up("app", inst)); x.value != tc.want {
				t.Fatalf("up = %v, want %v; logs:\n%s", x.value, tc.want, ru.logs.String())
			}
			if _, ok := s.find(series("m", "app", inst)); ok != (tc.want == 1) {
				t.Errorf("m scraped: %v, want %v", ok, tc.want == 1)
			}
		})
	}
}

func TestFallbackScrapeProtocolIsValidated(t *testing.T) {
	cfg := NewConfig()
	err := decodeInto(`
fallback_scrape_protocol: PrometheusText9
config:
  scrape_configs: [{job_name: a, static_configs: [{targets: ["127.0.0.1:1"]}]}]
`, cfg)
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "fallback_scrape_protocol") {
		t.Fatalf("got %v, want an error about fallback_scrape_protocol", err)
	}
	if err := promconfig.ScrapeProtocol(DefaultFallbackScrapeProtocol).Validate(); err != nil {
		t.Errorf("the default is not an upstream protocol: %v", err)
	}
}

// TestFirstScrapeDoesNotWaitForTheReloadInterval: with discovery and reloads throttled to a
// minute, the first targets are still scraped at once (well within waitScrape's 20 s); before,
// the first scrape came at the first reload tick.
func TestFirstScrapeDoesNotWaitForTheReloadInterval(t *testing.T) {
	tg := newTarget(t, "m 1\n")
	cfg := decodeConfig(t, oneJob("", "", tg.addr()))
	ru := startWith(t, cfg, options{discoveryReload: time.Minute, discoveryUpdate: time.Minute})
	ru.waitScrape("the first scrape", 0, has(series("m", "app", tg.addr()), 1))
}

// oneJob is a receiver config scraping addr every 100ms as job "app", with receiverKeys at the
// receiver's level and jobKeys in the scrape config.
func oneJob(receiverKeys, jobKeys, addr string) string {
	return fmt.Sprintf(`
%s
config:
  scrape_configs:
    - job_name: app
      scrape_interval: 100ms
      %s
      static_configs: [{targets: ["%s"]}]
`, receiverKeys, jobKeys, addr)
}
