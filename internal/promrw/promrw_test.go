package promrw

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// refHash is Prometheus's labels.Labels.Hash written the obvious way.
func refHash(ls []label) uint64 {
	var b []byte
	for _, l := range ls {
		b = append(b, l.name...)
		b = append(b, 0xff)
		b = append(b, l.value...)
		b = append(b, 0xff)
	}
	return xxhash.Sum64(b)
}

func collect(it LabelIter) ([]label, error) {
	var ls []label
	for n, v, ok := it.Next(); ok; n, v, ok = it.Next() {
		ls = append(ls, label{string(n), string(v)})
	}
	return ls, it.Err()
}

func sameLabels(a, b []label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScanV1(t *testing.T) {
	ss := fixtureSeries()
	body := reqV1(ss...)
	i := 0
	err := ScanV1(body, func(s SeriesV1) error {
		want := ss[i]
		got, err := collect(s.Labels())
		if err != nil || !sameLabels(got, want.labels) {
			t.Errorf("series %d labels = %v, %v; want %v", i, got, err, want.labels)
		}
		if s.Samples != len(want.samples) || s.Histograms != len(want.histograms) || s.Exemplars != len(want.exemplars) || s.NumLabels != len(want.labels) {
			t.Errorf("series %d counts = %d/%d/%d/%d", i, s.NumLabels, s.Samples, s.Histograms, s.Exemplars)
		}
		if s.Hash() != refHash(want.labels) {
			t.Errorf("series %d hash %x, want %x", i, s.Hash(), refHash(want.labels))
		}
		if string(s.MetricName()) != want.labels[0].value {
			t.Errorf("series %d metric name %q", i, s.MetricName())
		}
		if !bytes.Equal(body[s.Start:s.End], AppendSeriesV1(nil, s.Raw)) {
			t.Errorf("series %d: byte range [%d,%d) is not the field", i, s.Start, s.End)
		}
		i++
		return nil
	})
	if err != nil || i != len(ss) {
		t.Fatalf("ScanV1: %v after %d series", err, i)
	}

	samples, hists, n, err := CountV1(body)
	if err != nil || samples != 5 || hists != 2 || n != 3 {
		t.Fatalf("CountV1 = %d, %d, %d, %v; want 5, 2, 3", samples, hists, n, err)
	}

	stop := errors.New("stop")
	if err := ScanV1(body, func(SeriesV1) error { return stop }); err != stop {
		t.Fatalf("callback error = %v, want it returned as is", err)
	}
	if _, _, n, err := CountV1(nil); n != 0 || err != nil {
		t.Fatalf("empty body: %d, %v", n, err)
	}
}

func TestHashLongLabels(t *testing.T) {
	// Past the 1 KiB stack buffer the hash streams; it must not change.
	ls := lbls("__name__", "m", "a", strings.Repeat("x", 700), "b", strings.Repeat("y", 700), "c", "z")
	for cut := 2; cut <= len(ls); cut++ {
		s := series{labels: ls[:cut], samples: []sample{{1, 1}}}
		err := ScanV1(reqV1(s), func(s SeriesV1) error {
			if got, want := s.Hash(), refHash(ls[:cut]); got != want {
				t.Errorf("%d labels: hash %x, want %x", cut, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Raw message builders for malformed input.
func tag(num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(nil, num, typ)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func field(num protowire.Number, v []byte) []byte { return bytesField(nil, num, v) }

func varintField(num protowire.Number, x uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), x)
}

func labelMsg(name, value string) []byte { return field(1, encLabel(label{name, value})) }

func okSample() []byte { return field(2, encSample(sample{1, 1})) }

func TestScanV1Errors(t *testing.T) {
	// f checks that a validating scan rejects body with an error that wraps ErrMalformed and
	// contains want, and whether the trusted scan accepts it.
	f := func(name string, body []byte, want string, trustedOK bool) {
		t.Helper()
		err := ScanV1(body, nil)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrMalformed containing %q", name, err, want)
		}
		sc := Scanner{Trusted: true}
		if err := sc.ScanV1(body, nil); (err == nil) != trustedOK {
			t.Errorf("%s: trusted scan err = %v, want ok=%v", name, err, trustedOK)
		}
	}
	ts := func(parts ...[]byte) []byte { return field(1, cat(parts...)) }
	name := labelMsg("__name__", "up")

	// Wire structure.
	f("truncated tag", []byte{0x80}, "truncated field", false)
	f("field number 0", []byte{0x02, 0x00}, "invalid field number", false)
	f("group", []byte{0x0b}, "unsupported wire type", false)
	f("length past end", []byte{0x0a, 0x05, 0x00}, "length exceeds", false)
	f("timeseries varint", varintField(1, 3), "timeseries has wire type varint", false)
	f("metadata varint", varintField(3, 1), "metadata has wire type varint", false)
	f("metadata garbage", field(3, []byte{0xff}), "metadata at byte 0", true)
	f("2.0 body", reqV2(fixtureSeries()...), "remote write 2.0 body", false)
	f("series garbage", ts([]byte{0x0a}), "series 0 at byte 0: truncated", false)
	f("label varint", ts(varintField(1, 1)), "label has wire type varint", false)
	f("sample varint", ts(name, varintField(2, 1)), "sample has wire type varint", false)
	f("exemplar fixed", ts(name, protowire.AppendFixed64(tag(3, protowire.Fixed64Type), 1)), "exemplar has wire type fixed64", false)
	f("histogram fixed", ts(name, protowire.AppendFixed32(tag(4, protowire.Fixed32Type), 1)), "histogram has wire type fixed32", false)
	f("label name varint", ts(field(1, varintField(1, 1))), "label name has wire type varint", true)
	f("label value varint", ts(field(1, cat(field(1, []byte("a")), varintField(2, 1)))), "label value has wire type varint", true)
	f("label body garbage", ts(field(1, []byte{0x0a, 0x09})), "label 0: field length exceeds", true)

	// Label rules.
	f("no labels", ts(okSample()), "series has no labels", true)
	f("no __name__", ts(labelMsg("job", "x"), okSample()), "no __name__ label", true)
	f("bad label name", ts(name, labelMsg("a-b", "x")), `invalid label name "a-b"`, true)
	f("label name digit", ts(name, labelMsg("1a", "x")), `invalid label name "1a"`, true)
	f("label name colon", ts(labelMsg("__name__", "up"), labelMsg("a:b", "x")), `invalid label name "a:b"`, true)
	f("empty label name", ts(labelMsg("", "x"), name), `invalid label name ""`, true)
	f("bad metric name", ts(labelMsg("__name__", "http.requests")), `invalid metric name "http.requests"`, true)
	f("metric name digit", ts(labelMsg("__name__", "0up")), `invalid metric name "0up"`, true)
	f("duplicate", ts(name, labelMsg("job", "a"), labelMsg("job", "b")), `duplicate label name "job"`, true)
	f("unsorted", ts(name, labelMsg("job", "a"), labelMsg("instance", "b")), `labels not sorted: "instance" after "job"`, true)
	f("empty value", ts(name, labelMsg("job", "")), `label "job" has an empty value`, true)
	f("bad utf8", ts(name, labelMsg("job", "\xff")), `label "job" value is not valid UTF-8`, true)

	// Samples, exemplars, histograms.
	f("sample value varint", ts(name, field(2, varintField(1, 1))), "sample 0: value has wire type varint", true)
	f("sample ts fixed", ts(name, field(2, protowire.AppendFixed64(tag(2, protowire.Fixed64Type), 1))), "sample 0: timestamp has wire type fixed64", true)
	f("out of order", ts(name, field(2, encSample(sample{1, 20})), field(2, encSample(sample{1, 10}))), "sample 1: timestamp 10 is older than the previous sample's 20", true)
	f("exemplar label garbage", ts(name, field(3, field(1, []byte{0x0a}))), "exemplar 0: truncated", true)
	f("exemplar value varint", ts(name, field(3, varintField(2, 1))), "exemplar 0: value has wire type varint", true)
	f("histogram garbage", ts(name, field(4, []byte{0x08})), "histogram 0: truncated", true)

	// Errors name the series and its metric when it has one.
	f("names the metric", cat(reqV1(fixtureSeries()[0]), ts(labelMsg("__name__", "bad_one"), labelMsg("a", ""))), `series 1 ("bad_one") at byte `, true)

	// What the checker remembers from the series before (names and values at the same
	// positions) must not let a fault in the next series through.
	good := ts(name, labelMsg("a", "1"), labelMsg("b", "2"), labelMsg("c", "3"), okSample())
	after := func(bad []byte) []byte { return cat(good, good, bad) }
	f("known names, swapped", after(ts(name, labelMsg("a", "1"), labelMsg("c", "3"), labelMsg("b", "2"))), `series 2 ("up") at byte 110: labels not sorted: "b" after "c"`, true)
	f("known name repeated", after(ts(name, labelMsg("a", "1"), labelMsg("a", "1"))), `duplicate label name "a"`, true)
	f("known name after an unknown one", after(ts(name, labelMsg("z", "1"), labelMsg("b", "2"))), `labels not sorted: "b" after "z"`, true)
	f("known name, new bad value", after(ts(name, labelMsg("a", "\xff"))), `label "a" value is not valid UTF-8`, true)
	f("known name, empty value", after(ts(name, labelMsg("a", ""))), `label "a" has an empty value`, true)
	f("known __name__, bad metric", after(ts(labelMsg("__name__", "a.b"))), `invalid metric name "a.b"`, true)
	f("known names, no __name__ this time", after(ts(labelMsg("a", "1"), labelMsg("b", "2"))), "no __name__ label", true)
	f("longer than before", after(ts(name, labelMsg("a", "1"), labelMsg("b", "2"), labelMsg("c", "3"), labelMsg("c", "4"))), `duplicate label name "c"`, true)
	f("bad name where the last had none", after(ts(name, labelMsg("a", "1"), labelMsg("b", "2"), labelMsg("c", "3"), labelMsg("d-e", "4"))), `invalid label name "d-e"`, true)
	// A scanner reused for another request starts afresh.
	var sc Scanner
	if err := sc.ScanV1(cat(good, good), nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.ScanV1(ts(name, labelMsg("a", "1"), labelMsg("a", "1")), nil); err == nil {
		t.Error("a reused scanner accepted a duplicate label")
	}
}

func TestScanV1Accepts(t *testing.T) {
	f := func(name string, body []byte, samples int) {
		t.Helper()
		got, _, _, err := CountV1(body)
		if err != nil || got != samples {
			t.Errorf("%s: %d samples, %v; want %d", name, got, err, samples)
		}
	}
	name := labelMsg("__name__", "up")
	f("colon metric", reqV1(series{labels: lbls("__name__", "job:rate5m:sum"), samples: []sample{{1, 1}}}), 1)
	f("unknown fields", cat(varintField(9, 1), field(1, cat(name, varintField(7, 1), okSample())), field(15, []byte("x"))), 1)
	f("equal timestamps", field(1, cat(name, field(2, encSample(sample{1, 5})), field(2, encSample(sample{2, 5})))), 2)
	f("labels after samples", field(1, cat(okSample(), name)), 1) // field order is free in protobuf
	f("no samples", field(1, name), 0)
	f("metadata only", field(3, cat(varintField(1, 1), field(2, []byte("up")))), 0)
	f("sample defaults", field(1, cat(name, field(2, nil))), 1)
}

func TestScanV2(t *testing.T) {
	ss := fixtureSeries()
	body := reqV2(ss...)
	i := 0
	err := ScanV2(body, func(s SeriesV2) error {
		want := ss[i]
		got, err := collect(s.Labels())
		if err != nil || !sameLabels(got, want.labels) {
			t.Errorf("series %d labels = %v, %v; want %v", i, got, err, want.labels)
		}
		if s.Samples != len(want.samples) || s.Histograms != len(want.histograms) || s.Exemplars != len(want.exemplars) {
			t.Errorf("series %d counts = %d/%d/%d", i, s.Samples, s.Histograms, s.Exemplars)
		}
		if s.Hash() != refHash(want.labels) {
			t.Errorf("series %d hash differs from the 1.0 hash", i)
		}
		if string(s.MetricName()) != want.labels[0].value || string(s.Symbols()[0]) != "" {
			t.Errorf("series %d metric name %q", i, s.MetricName())
		}
		if !bytes.Equal(body[s.Start:s.End], bytesField(nil, 5, s.Raw)) {
			t.Errorf("series %d: byte range is not the field", i)
		}
		i++
		return nil
	})
	if err != nil || i != len(ss) {
		t.Fatalf("ScanV2: %v after %d series", err, i)
	}
	c, err := CountV2(body)
	if want := (Counts{Series: 3, Samples: 5, Histograms: 2, Exemplars: 1}); err != nil || c != want {
		t.Fatalf("CountV2 = %+v, %v; want %+v", c, err, want)
	}
}

func TestScanV2Errors(t *testing.T) {
	f := func(name string, body []byte, want string, trustedOK bool) {
		t.Helper()
		err := ScanV2(body, nil)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrMalformed containing %q", name, err, want)
		}
		sc := Scanner{Trusted: true}
		if err := sc.ScanV2(body, nil); (err == nil) != trustedOK {
			t.Errorf("%s: trusted scan err = %v, want ok=%v", name, err, trustedOK)
		}
	}
	// symbols: "", __name__, up, job, x
	syms := symbolsField("", "__name__", "up", "job", "x")
	refs := func(r ...uint64) []byte {
		var b []byte
		for _, x := range r {
			b = protowire.AppendVarint(b, x)
		}
		return field(1, b)
	}
	ts := func(parts ...[]byte) []byte { return field(5, cat(parts...)) }
	smp := okSample()

	f("truncated", cat(syms, []byte{0x2a, 0x03, 0x00}), "length exceeds", false)
	f("1.0 body", reqV1(fixtureSeries()...), "remote write 1.0 body", false)
	f("symbol varint", varintField(4, 1), "symbol has wire type varint", false)
	f("timeseries varint", cat(syms, varintField(5, 1)), "timeseries has wire type varint", false)
	f("symbols[0] not empty", cat(symbolsField("up"), ts(refs(0, 0), smp)), `symbols[0] is "up"`, false)
	f("no symbols", ts(smp), "1 series but no symbols", false)
	f("labels_refs fixed", cat(syms, ts(protowire.AppendFixed64(tag(1, protowire.Fixed64Type), 1))), "labels_refs has wire type fixed64", false)
	f("odd refs", cat(syms, ts(refs(1, 2, 3), smp)), "odd number of label refs", true)
	f("ref out of range", cat(syms, ts(refs(1, 2, 3, 9), smp)), "label ref out of range", true)
	f("ref overflow", cat(syms, ts(refs(1, 2, 3, 1<<33), smp)), "does not fit in uint32", true)
	f("refs truncated", cat(syms, ts(field(1, []byte{0x81}), smp)), "truncated", true)
	f("no __name__", cat(syms, ts(refs(3, 4), smp)), "no __name__", true)
	f("no labels", cat(syms, ts(smp)), "series has no labels", true)
	f("unsorted", cat(syms, ts(refs(3, 4, 1, 2), smp)), `labels not sorted: "__name__" after "job"`, true)
	f("empty value", cat(syms, ts(refs(1, 2, 3, 0), smp)), `label "job" has an empty value`, true)
	f("both kinds", cat(syms, ts(refs(1, 2), smp, field(3, histogram(1, 1, 1)))), "both samples and histograms", true)
	f("out of order", cat(syms, ts(refs(1, 2), field(2, encSample(sample{1, 9})), field(2, encSample(sample{1, 8})))), "sample 1: timestamp 8 is older", true)
	f("histogram garbage", cat(syms, ts(refs(1, 2), field(3, []byte{0x0a, 0x01}))), "histogram 0: field length exceeds", true)
	f("exemplar ref range", cat(syms, ts(refs(1, 2), smp, field(4, refs(3, 7)))), "exemplar 0: label ref out of range", true)
	f("exemplar odd refs", cat(syms, ts(refs(1, 2), smp, field(4, refs(3)))), "exemplar 0: odd number", true)
	f("metadata ref range", cat(syms, ts(refs(1, 2), smp, field(5, varintField(3, 5)))), "metadata: label ref out of range", true)
	f("metadata type bytes", cat(syms, ts(refs(1, 2), smp, field(5, field(1, nil)))), "metadata: field 1 has wire type bytes", true)
	f("created bytes", cat(syms, ts(refs(1, 2), smp, field(6, nil))), "created_timestamp has wire type bytes", true)
	f("names the metric", cat(syms, ts(refs(1, 2, 3, 0), smp)), `series 0 ("up")`, true)
}

func TestScanV2Accepts(t *testing.T) {
	f := func(name string, body []byte, want []label) {
		t.Helper()
		n := 0
		err := ScanV2(body, func(s SeriesV2) error {
			n++
			got, err := collect(s.Labels())
			if err != nil || !sameLabels(got, want) {
				t.Errorf("%s: labels %v, %v; want %v", name, got, err, want)
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Errorf("%s: %v, %d series", name, err, n)
		}
	}
	syms := symbolsField("", "__name__", "up", "job", "x")
	ls := lbls("__name__", "up", "job", "x")
	smp := okSample()
	ref := func(x uint64) []byte { return varintField(1, x) }
	packed := func(r ...uint64) []byte {
		var b []byte
		for _, x := range r {
			b = protowire.AppendVarint(b, x)
		}
		return field(1, b)
	}
	f("packed", cat(syms, field(5, cat(packed(1, 2, 3, 4), smp))), ls)
	f("unpacked", cat(syms, field(5, cat(ref(1), ref(2), ref(3), ref(4), smp))), ls)
	f("split chunks", cat(syms, field(5, cat(packed(1), smp, packed(2, 3), ref(4)))), ls)
	f("symbols after series", cat(field(5, cat(packed(1, 2, 3, 4), smp)), syms), ls)
	f("unknown fields", cat(syms, varintField(9, 1), field(5, cat(packed(1, 2, 3, 4), smp, varintField(12, 1)))), ls)
	f("created and metadata", cat(syms, field(5, cat(packed(1, 2, 3, 4), smp, varintField(6, 123), field(5, varintField(1, 2))))), ls)
	if _, err := CountV2(symbolsField("")); err != nil {
		t.Errorf("empty request: %v", err)
	}
}

// TestV2AsV1 checks the conversion against the 1.0 encoding of the same series, byte for byte.
func TestV2AsV1(t *testing.T) {
	ss := fixtureSeries()
	ss = append(ss, bigSeries(20, 3)...)
	var got []byte
	var hashes []uint64
	err := ScanV2(reqV2(ss...), func(s SeriesV2) error {
		got = AppendV2AsV1(got, s)
		hashes = append(hashes, s.Hash())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := reqV1(ss...); !bytes.Equal(got, want) {
		t.Fatalf("AppendV2AsV1 differs from the 1.0 encoding:\n got %x\nwant %x", got, want)
	}
	i := 0
	if err := ScanV1(got, func(s SeriesV1) error {
		if s.Hash() != hashes[i] {
			t.Errorf("series %d: hash changed in conversion", i)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBuilder re-batches several 1.0 requests into shards and checks that every series lands in
// its hash's shard once, with the samples of a series in the order they arrived.
func TestBuilder(t *testing.T) {
	// Three requests carrying the same 50 series with successive timestamps.
	var reqs [][]byte
	for r := range 3 {
		ss := bigSeries(50, 2)
		for i := range ss {
			for j := range ss[i].samples {
				ss[i].samples[j].ts = int64(r*10 + j)
			}
		}
		reqs = append(reqs, reqV1(ss...))
	}
	for _, n := range []int{0, 1, 8} {
		b := NewBuilder(n)
		for _, body := range reqs {
			if err := ScanV1(body, func(s SeriesV1) error { b.Add(s); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		var total Counts
		seen := map[uint64][]int64{}
		for i := range b.Shards() {
			body, c := b.Request(i)
			if b.Size(i) != len(body) {
				t.Fatalf("Size(%d) = %d, body is %d", i, b.Size(i), len(body))
			}
			var got Counts
			err := ScanV1(body, func(s SeriesV1) error {
				got.add(s.Samples, s.Histograms, s.Exemplars)
				h := s.Hash()
				if b.ShardOf(h) != i {
					t.Errorf("%d shards: series in shard %d, hash says %d", n, i, b.ShardOf(h))
				}
				for _, x := range samplesOf(t, s.Raw) {
					seen[h] = append(seen[h], x.ts)
				}
				return nil
			})
			if err != nil || got != c {
				t.Fatalf("%d shards: shard %d scans to %+v, %v; builder says %+v", n, i, got, err, c)
			}
			total.Series += c.Series
			total.Samples += c.Samples
		}
		if total.Series != 150 || total.Samples != 300 || len(seen) != 50 {
			t.Fatalf("%d shards: %+v over %d label sets", n, total, len(seen))
		}
		for h, tss := range seen {
			if fmt.Sprint(tss) != "[0 1 10 11 20 21]" {
				t.Fatalf("%d shards: series %x timestamps %v, want in arrival order", n, h, tss)
			}
		}
		b.Reset()
		if body, c := b.Request(0); len(body) != 0 || c != (Counts{}) {
			t.Fatal("Reset left data")
		}
	}
}

func samplesOf(t *testing.T, raw []byte) []sample {
	t.Helper()
	var out []sample
	for len(raw) > 0 {
		num, _, v, _, n, err := readField(raw)
		if err != nil {
			t.Fatal(err)
		}
		raw = raw[n:]
		if num != 2 {
			continue
		}
		var s sample
		for len(v) > 0 {
			num, _, _, u, n, err := readField(v)
			if err != nil {
				t.Fatal(err)
			}
			v = v[n:]
			if num == 2 {
				s.ts = int64(u)
			}
		}
		out = append(out, s)
	}
	return out
}

func TestBuilderV2(t *testing.T) {
	ss := bigSeries(40, 1)
	b := NewBuilder(4)
	if err := ScanV2(reqV2(ss...), func(s SeriesV2) error { b.AddV2(s); return nil }); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range b.Shards() {
		body, c := b.Request(i)
		_, _, series, err := CountV1(body)
		if err != nil || series != c.Series {
			t.Fatalf("shard %d: %d series, %v; want %d", i, series, err, c.Series)
		}
		n += series
	}
	if n != 40 {
		t.Fatalf("%d series, want 40", n)
	}
}

func TestNames(t *testing.T) {
	f := func(name string, label, metric bool) {
		t.Helper()
		if ValidLabelName([]byte(name)) != label || ValidMetricName([]byte(name)) != metric {
			t.Errorf("%q: label %v metric %v", name, !label, !metric)
		}
	}
	f("a", true, true)
	f("_", true, true)
	f("__name__", true, true)
	f("A_1", true, true)
	f("a:b", false, true)
	f(":a", false, true)
	f("1a", false, false)
	f("", false, false)
	f("a-b", false, false)
	f("é", false, false)
	f("a b", false, false)
}

// TestAllocs pins the zero-allocation promises the relay's throughput depends on.
func TestAllocs(t *testing.T) {
	body := reqV1(bigSeries(100, 2)...)
	body2 := reqV2(bigSeries(100, 2)...)
	f := func(name string, want float64, fn func()) {
		t.Helper()
		if got := testing.AllocsPerRun(20, fn); got > want {
			t.Errorf("%s: %.1f allocations, want <= %.0f", name, got, want)
		}
	}
	var sink uint64
	trusted := Scanner{Trusted: true}
	var validating Scanner
	count := func(s SeriesV1) error { sink += uint64(s.Samples); return nil }
	hash := func(s SeriesV1) error { sink += s.Hash(); return nil }
	f("trusted ScanV1", 0, func() { _ = trusted.ScanV1(body, count) })
	f("validating ScanV1", 0, func() { _ = validating.ScanV1(body, count) })
	f("ScanV1 + Hash", 0, func() { _ = trusted.ScanV1(body, hash) })
	_ = validating.ScanV2(body2, nil) // grows the symbol table once
	f("validating ScanV2, reused scanner", 0, func() { _ = validating.ScanV2(body2, func(s SeriesV2) error { sink += s.Hash(); return nil }) })
	b := NewBuilder(8)
	add := func(s SeriesV1) error { b.Add(s); return nil }
	_ = trusted.ScanV1(body, add)
	f("Builder.Add after warm-up", 0, func() { b.Reset(); _ = trusted.ScanV1(body, add) })
	var dst []byte
	conv := func(s SeriesV2) error { dst = AppendV2AsV1(dst, s); return nil }
	_ = trusted.ScanV2(body2, conv)
	f("AppendV2AsV1 after warm-up", 0, func() { dst = dst[:0]; _ = trusted.ScanV2(body2, conv) })
	_ = sink
}
