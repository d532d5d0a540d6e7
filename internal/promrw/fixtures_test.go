package promrw

import (
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The upstream prompb types would need github.com/prometheus/prometheus in go.mod, so the tests
// encode requests by hand with protowire, field by field, from these plain structs.

type label struct{ name, value string }

type sample struct {
	v  float64
	ts int64
}

type exemplar struct {
	labels []label
	v      float64
	ts     int64
}

type metadata struct {
	typ        uint64
	help, unit string
}

type series struct {
	labels     []label
	samples    []sample
	histograms [][]byte
	exemplars  []exemplar
	meta       *metadata // 2.0 only
	created    int64     // 2.0 only
}

// lbls builds labels from name, value pairs.
func lbls(kv ...string) []label {
	var ls []label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, label{kv[i], kv[i+1]})
	}
	return ls
}

// histogram encodes a small integer native histogram.
func histogram(count uint64, sum float64, ts int64) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, count)
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(sum))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(3))
	b = protowire.AppendTag(b, 15, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(ts))
	return b
}

func encSample(s sample) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(s.v))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(s.ts))
}

func encLabel(l label) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, l.name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, l.value)
}

func bytesField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}

func encExemplarV1(e exemplar) []byte {
	var b []byte
	for _, l := range e.labels {
		b = bytesField(b, 1, encLabel(l))
	}
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(e.v))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(e.ts))
}

// encSeriesV1 encodes a prometheus.TimeSeries with its parts in the order AppendV2AsV1 writes
// them (labels, samples, histograms, exemplars), so conversions compare byte for byte.
func encSeriesV1(s series) []byte {
	var b []byte
	for _, l := range s.labels {
		b = bytesField(b, 1, encLabel(l))
	}
	for _, x := range s.samples {
		b = bytesField(b, 2, encSample(x))
	}
	for _, h := range s.histograms {
		b = bytesField(b, 4, h)
	}
	for _, e := range s.exemplars {
		b = bytesField(b, 3, encExemplarV1(e))
	}
	return b
}

func reqV1(ss ...series) []byte {
	var b []byte
	for _, s := range ss {
		b = bytesField(b, 1, encSeriesV1(s))
	}
	return b
}

// symtab interns strings for a 2.0 request; symbols[0] is "".
type symtab struct {
	syms []string
	idx  map[string]uint64
}

func newSymtab() *symtab { return &symtab{syms: []string{""}, idx: map[string]uint64{"": 0}} }

func (t *symtab) ref(s string) uint64 {
	if i, ok := t.idx[s]; ok {
		return i
	}
	t.idx[s] = uint64(len(t.syms))
	t.syms = append(t.syms, s)
	return t.idx[s]
}

func (t *symtab) refs(ls []label) []byte {
	var b []byte
	for _, l := range ls {
		b = protowire.AppendVarint(b, t.ref(l.name))
		b = protowire.AppendVarint(b, t.ref(l.value))
	}
	return b
}

func encSeriesV2(t *symtab, s series) []byte {
	var b []byte
	if len(s.labels) > 0 {
		b = bytesField(b, 1, t.refs(s.labels))
	}
	for _, x := range s.samples {
		b = bytesField(b, 2, encSample(x))
	}
	for _, h := range s.histograms {
		b = bytesField(b, 3, h)
	}
	for _, e := range s.exemplars {
		var eb []byte
		if len(e.labels) > 0 {
			eb = bytesField(eb, 1, t.refs(e.labels))
		}
		eb = protowire.AppendTag(eb, 2, protowire.Fixed64Type)
		eb = protowire.AppendFixed64(eb, math.Float64bits(e.v))
		eb = protowire.AppendTag(eb, 3, protowire.VarintType)
		eb = protowire.AppendVarint(eb, uint64(e.ts))
		b = bytesField(b, 4, eb)
	}
	if s.meta != nil {
		var mb []byte
		mb = protowire.AppendTag(mb, 1, protowire.VarintType)
		mb = protowire.AppendVarint(mb, s.meta.typ)
		mb = protowire.AppendTag(mb, 3, protowire.VarintType)
		mb = protowire.AppendVarint(mb, t.ref(s.meta.help))
		mb = protowire.AppendTag(mb, 4, protowire.VarintType)
		mb = protowire.AppendVarint(mb, t.ref(s.meta.unit))
		b = bytesField(b, 5, mb)
	}
	if s.created != 0 {
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.created))
	}
	return b
}

// reqV2 encodes a 2.0 request: symbols first, then the series.
func reqV2(ss ...series) []byte {
	t := newSymtab()
	var body []byte
	for _, s := range ss {
		body = bytesField(body, 5, encSeriesV2(t, s))
	}
	return append(symbolsField(t.syms...), body...)
}

func symbolsField(syms ...string) []byte {
	var b []byte
	for _, s := range syms {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// fixtureSeries is a small request with every part: plain samples, a histogram, exemplars,
// metadata and a created timestamp.
func fixtureSeries() []series {
	return []series{
		{
			labels:  lbls("__name__", "http_requests_total", "code", "200", "job", "api"),
			samples: []sample{{1, 1000}, {2, 2000}, {3, 3000}},
			exemplars: []exemplar{
				{labels: lbls("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), v: 2, ts: 2000},
			},
			meta:    &metadata{typ: 1, help: "Requests served.", unit: ""},
			created: 500,
		},
		{
			labels:  lbls("__name__", "up", "instance", "10.0.0.1:9100", "job", "node"),
			samples: []sample{{1, 1000}, {math.Float64frombits(0x7ff0000000000002), 2000}}, // stale marker
		},
		{
			labels:     lbls("__name__", "rpc_duration_seconds", "job", "api"),
			histograms: [][]byte{histogram(10, 2.5, 1000), histogram(12, 3, 2000)},
			meta:       &metadata{typ: 3, help: "RPC latency.", unit: "seconds"},
		},
	}
}

// bigSeries makes n series of k samples each with labels shaped like a Kubernetes scrape.
func bigSeries(n, k int) []series {
	ss := make([]series, n)
	for i := range ss {
		var sm []sample
		for j := range k {
			sm = append(sm, sample{float64(i + j), 1_700_000_000_000 + int64(j)*15_000})
		}
		ss[i] = series{
			labels: lbls(
				"__name__", []string{"http_requests_total", "process_cpu_seconds_total", "go_goroutines"}[i%3],
				"code", []string{"200", "404", "500"}[i%3+0],
				"handler", "/api/v1/query_range",
				"instance", "10.0.0."+strconv.Itoa(i%250)+":9090",
				"job", "kubernetes-pods",
				"namespace", "monitoring",
				"pod", "prometheus-k8s-"+strconv.Itoa(i),
			),
			samples: sm,
		}
	}
	return ss
}
