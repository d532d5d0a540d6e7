package engine

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vigilhq/vigil/slo/spec"
)

type spanMatcher struct {
	service string
	kind    ptrace.SpanKind // unspecified: any
	name    string
	re      *regexp.Regexp
	attrs   map[string]string
	latency time.Duration
}

func newSpanMatcher(s *spec.Spans) (*spanMatcher, error) {
	m := &spanMatcher{service: s.Service, name: s.Name, attrs: s.Attributes, latency: s.Latency}
	if s.NameRegex != "" {
		re, err := regexp.Compile("^(?:" + s.NameRegex + ")$")
		if err != nil {
			return nil, err
		}
		m.re = re
	}
	m.kind = map[string]ptrace.SpanKind{
		"internal": ptrace.SpanKindInternal, "server": ptrace.SpanKindServer, "client": ptrace.SpanKindClient,
		"producer": ptrace.SpanKindProducer, "consumer": ptrace.SpanKindConsumer,
	}[s.Kind]
	return m, nil
}

// attr looks a key up in the record's attributes, then the resource's.
func attr(key string, own, res pcommon.Map) (string, bool) {
	if v, ok := own.Get(key); ok {
		return v.AsString(), true
	}
	if v, ok := res.Get(key); ok {
		return v.AsString(), true
	}
	return "", false
}

func attrsMatch(want map[string]string, own, res pcommon.Map) bool {
	for k, v := range want {
		if got, ok := attr(k, own, res); !ok || got != v {
			return false
		}
	}
	return true
}

func serviceOf(res pcommon.Map) string {
	if v, ok := res.Get("service.name"); ok {
		return v.Str()
	}
	return ""
}

// match reports whether the span counts for the SLO, and whether it is good.
func (m *spanMatcher) match(service string, sp ptrace.Span, res pcommon.Map) (matched, good bool) {
	switch {
	case m.service != "" && service != m.service,
		m.kind != ptrace.SpanKindUnspecified && sp.Kind() != m.kind,
		m.name != "" && sp.Name() != m.name,
		m.re != nil && !m.re.MatchString(sp.Name()),
		!attrsMatch(m.attrs, sp.Attributes(), res):
		return false, false
	}
	good = sp.Status().Code() != ptrace.StatusCodeError
	if good && m.latency > 0 {
		good = sp.EndTimestamp() >= sp.StartTimestamp() && time.Duration(sp.EndTimestamp()-sp.StartTimestamp()) <= m.latency
	}
	return true, good
}

type logCond struct {
	service  string
	body     *regexp.Regexp
	severity plog.SeverityNumber // at least; unspecified: any
	attrs    map[string]string
}

type logMatcher struct{ match, bad logCond }

func newLogCond(m *spec.LogMatch) (logCond, error) {
	c := logCond{service: m.Service, attrs: m.Attributes}
	if m.Body != "" {
		re, err := regexp.Compile(m.Body)
		if err != nil {
			return c, err
		}
		c.body = re
	}
	if i := slices.Index(spec.Severities, m.Severity); i >= 0 {
		c.severity = plog.SeverityNumber(1 + 4*i) // TRACE=1, DEBUG=5, INFO=9, WARN=13, ERROR=17, FATAL=21
	}
	return c, nil
}

func newLogMatcher(match, bad *spec.LogMatch) (*logMatcher, error) {
	m, err := newLogCond(match)
	if err != nil {
		return nil, err
	}
	b, err := newLogCond(bad)
	if err != nil {
		return nil, err
	}
	return &logMatcher{match: m, bad: b}, nil
}

// severityOf is the record's severity number, or one read from its text when unset.
func severityOf(lr plog.LogRecord) plog.SeverityNumber {
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		return n
	}
	t := strings.ToLower(lr.SeverityText())
	for i, name := range spec.Severities {
		if strings.HasPrefix(t, name) || (name == "error" && strings.HasPrefix(t, "err")) {
			return plog.SeverityNumber(1 + 4*i)
		}
	}
	return plog.SeverityNumberUnspecified
}

func (c *logCond) holds(service string, lr plog.LogRecord, res pcommon.Map) bool {
	switch {
	case c.service != "" && service != c.service,
		c.severity != plog.SeverityNumberUnspecified && severityOf(lr) < c.severity,
		c.body != nil && !c.body.MatchString(lr.Body().AsString()),
		!attrsMatch(c.attrs, lr.Attributes(), res):
		return false
	}
	return true
}

// minuteCounts adds up one batch's events per minute before they go into the ring.
type minuteCounts map[int64][2]float64 // unix minute → bad, total

func (mc minuteCounts) add(t time.Time, bad bool) {
	m := t.Unix() / 60
	c := mc[m]
	if bad {
		c[0]++
	}
	c[1]++
	mc[m] = c
}

func (e *Engine) flush(en *entry, now time.Time, mc minuteCounts) {
	for m, c := range mc {
		e.add(en, now, time.Unix(m*60, 0), c[0], c[1])
	}
}

// ConsumeTraces counts the spans of td for every span SLO, in the minute each span ended.
func (e *Engine) ConsumeTraces(td ptrace.Traces) {
	now := e.now()
	for _, en := range e.slos {
		if en.spans == nil {
			continue
		}
		mc := minuteCounts{}
		for _, rs := range td.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			service := serviceOf(res)
			if en.spans.service != "" && service != en.spans.service {
				continue
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if ok, good := en.spans.match(service, sp, res); ok {
						at := sp.EndTimestamp().AsTime()
						if sp.EndTimestamp() == 0 {
							at = now
						}
						mc.add(at, !good)
					}
				}
			}
		}
		e.flush(en, now, mc)
	}
}

// ConsumeLogs counts the log records of ld for every log SLO, in the minute of each record's
// time (its observed time when unset).
func (e *Engine) ConsumeLogs(ld plog.Logs) {
	now := e.now()
	for _, en := range e.slos {
		if en.logs == nil {
			continue
		}
		mc := minuteCounts{}
		for _, rl := range ld.ResourceLogs().All() {
			res := rl.Resource().Attributes()
			service := serviceOf(res)
			if en.logs.match.service != "" && service != en.logs.match.service {
				continue
			}
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if !en.logs.match.holds(service, lr, res) {
						continue
					}
					ts := lr.Timestamp()
					if ts == 0 {
						ts = lr.ObservedTimestamp()
					}
					at := ts.AsTime()
					if ts == 0 {
						at = now
					}
					mc.add(at, en.logs.bad.holds(service, lr, res))
				}
			}
		}
		e.flush(en, now, mc)
	}
}

// Wants reports whether some SLO takes spans (traces) or logs.
func (e *Engine) Wants(traces bool) bool {
	for _, en := range e.slos {
		if (traces && en.spans != nil) || (!traces && en.logs != nil) {
			return true
		}
	}
	return false
}
