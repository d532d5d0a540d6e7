package prometheus

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The OpenTelemetry specification's Prometheus compatibility rules, OTLP → Prometheus direction:
// https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/

// unitWords names the UCUM units that have a Prometheus base-unit word. Units not listed are
// used as they are, sanitized; annotations in braces ("{requests}") are dropped.
var unitWords = map[string]string{
	// time
	"d": "days", "h": "hours", "min": "minutes", "s": "seconds",
	"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds",
	// bytes
	"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
	"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
	// SI
	"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
	"Cel": "celsius", "Hz": "hertz", "%": "percent",
}

// perUnitWords names the denominators of "X/Y" units: "By/s" → "bytes_per_second".
var perUnitWords = map[string]string{
	"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
}

// metricName is the Prometheus name of m: namespace prefix, sanitized name, then (with suffixes)
// the unit words, "ratio" for gauges of unit "1", and "total" for monotonic counters. A suffix
// the name already ends with is not repeated.
func metricName(m pmetric.Metric, namespace string, addSuffixes bool) string {
	var monotonic, gauge bool
	switch m.Type() {
	case pmetric.MetricTypeSum:
		monotonic = m.Sum().IsMonotonic()
		gauge = !monotonic
	case pmetric.MetricTypeGauge:
		gauge = true
	}
	return buildName(m.Name(), m.Unit(), namespace, addSuffixes, monotonic, gauge)
}

func buildName(name, unit, namespace string, addSuffixes, counter, gauge bool) string {
	if namespace != "" {
		name = namespace + "_" + name
	}
	name = sanitizeMetricName(name)
	if !addSuffixes {
		return name
	}
	main, per := unitSuffixes(unit)
	if main == "" && gauge && strings.TrimSpace(unit) == "1" {
		main = "ratio"
	}
	for _, s := range []string{main, per} {
		if s != "" && !strings.HasSuffix(name, "_"+s) {
			name += "_" + s
		}
	}
	if counter && !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	return name
}

// unitSuffixes returns the words for a unit's numerator and denominator ("per_second"), each
// sanitized; empty parts give "".
func unitSuffixes(unit string) (main, per string) {
	unit = stripAnnotations(unit)
	num, den, hasPer := strings.Cut(unit, "/")
	num, den = strings.TrimSpace(num), strings.TrimSpace(den)
	if num != "" && num != "1" {
		if w, ok := unitWords[num]; ok {
			main = w
		} else {
			main = strings.Trim(collapse(sanitize(num, false)), "_")
		}
	}
	if hasPer && den != "" {
		w, ok := perUnitWords[den]
		if !ok {
			w = strings.Trim(collapse(sanitize(den, false)), "_")
		}
		if w != "" {
			per = "per_" + w
		}
	}
	return main, per
}

// stripAnnotations removes UCUM annotations: "{packets}/s" → "/s".
func stripAnnotations(unit string) string {
	var b strings.Builder
	depth := 0
	for _, r := range unit {
		switch {
		case r == '{':
			depth++
		case r == '}' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// sanitizeMetricName maps a name onto [a-zA-Z_:][a-zA-Z0-9_:]*: every other character becomes
// "_", runs of "_" collapse to one, and a leading digit gets a "_" in front.
func sanitizeMetricName(name string) string {
	if name == "" {
		return ""
	}
	s := collapse(sanitize(name, true))
	if s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// labelName maps an attribute key onto [a-zA-Z_][a-zA-Z0-9_]*: other characters become "_", a
// leading digit gets "key_" in front, and a leading "__" (reserved for Prometheus' own labels)
// gets "key" in front. An empty key gives "".
func labelName(key string) string {
	if key == "" {
		return ""
	}
	s := sanitize(key, false)
	switch {
	case s[0] >= '0' && s[0] <= '9':
		s = "key_" + s
	case strings.HasPrefix(s, "__"):
		s = "key" + s
	}
	return s
}

// validLabelName reports whether s is a label name Prometheus accepts from a target.
func validLabelName(s string) bool {
	return s != "" && labelName(s) == s
}

// sanitize replaces characters outside [a-zA-Z0-9_] (plus ':' when colon) with '_'.
func sanitize(s string, colon bool) string {
	changed := false
	out := make([]byte, 0, len(s))
	for _, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || (colon && r == ':')
		if ok {
			out = append(out, byte(r))
		} else {
			out = append(out, '_')
			changed = true
		}
	}
	if !changed {
		return s
	}
	return string(out)
}

// collapse replaces runs of '_' by one.
func collapse(s string) string {
	if !strings.Contains(s, "__") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i > 0 && s[i-1] == '_' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
