package loki

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() []Stream {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	return []Stream{
		{Labels: []Label{{"job", "api"}, {"namespace", `prod "eu"`}}, Entries: []Entry{
			{Timestamp: t0, Line: "GET /pay 200", Metadata: []Label{{"trace_id", "0af7651916cd43dd8448eb211c80319c"}}},
			{Timestamp: t0.Add(time.Second), Line: "multi\nline ünïcode"},
		}},
		{Labels: []Label{{"job", "worker"}}, Entries: []Entry{{Timestamp: time.Unix(1, 0).UTC(), Line: ""}}},
	}
}

func TestProtoRoundTrip(t *testing.T) {
	in := sample()
	got, err := DecodeProto(AppendProto(nil, in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
}

func TestLabels(t *testing.T) {
	ls := []Label{{"a", `x"y\z`}, {"b", "line\nbreak"}}
	s := FormatLabels(ls)
	if s != `{a="x\"y\\z", b="line\nbreak"}` {
		t.Errorf("format: %s", s)
	}
	back, err := ParseLabels(s)
	if err != nil || !reflect.DeepEqual(back, ls) {
		t.Errorf("parse %s: %v %v", s, back, err)
	}
	for _, bad := range []string{``, `a="b"`, `{a=b}`, `{1a="b"}`, `{a="b}`, `{a="b", a="c"}`, `{="b"}`} {
		if _, err := ParseLabels(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseLabels(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestJSON(t *testing.T) {
	body := `{"streams":[{"stream":{"job":"api","env":"prod"},"values":[["1764756000000000000","hello"],["1764756001000000000","with md",{"trace_id":"abc"}]]}]}`
	got, err := DecodeJSON([]byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Entries) != 2 || got[0].Labels[0].Name != "env" || got[0].Entries[1].Metadata[0].Value != "abc" ||
		!got[0].Entries[0].Timestamp.Equal(time.Unix(0, 1764756000000000000)) {
		t.Errorf("decoded %+v", got)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"streams":[{"stream":{},"values":[]}]}`, "no labels"},
		{`{"streams":[{"stream":{"a":"b"},"values":[[1764756000000000000,"x"]]}]}`, "string of nanoseconds"},
		{`{"streams":[{"stream":{"a":"b"},"values":[["x","y"]]}]}`, "timestamp"},
		{`{"streams":[{"stream":{"a":"b"},"values":[["1","y",{"k":1}]]}]}`, "structured metadata"},
		{`{"streams":[{"stream":{"a-b":"c"},"values":[]}]}`, "valid label name"},
		{`{"streams":`, "malformed"},
	} {
		if _, err := DecodeJSON([]byte(tc.body), Limits{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	b := AppendProto(nil, sample())
	for _, lim := range []Limits{{MaxLineBytes: 5}, {MaxLabels: 1}, {MaxEntriesPerBody: 2}} {
		if _, err := DecodeProto(b, lim); !errors.Is(err, ErrTooMany) {
			t.Errorf("%+v: %v, want ErrTooMany", lim, err)
		}
	}
	for _, bad := range [][]byte{{0x0a}, {0x0a, 0x05, 0x0a}, {0xff, 0xff}, AppendProto(nil, sample())[:20]} {
		if _, err := DecodeProto(bad, Limits{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzDecodeProto(f *testing.F) {
	f.Add(AppendProto(nil, sample()))
	f.Fuzz(func(t *testing.T, b []byte) {
		streams, err := DecodeProto(b, Limits{MaxLineBytes: 1 << 20, MaxLabels: 30, MaxEntriesPerBody: 10000})
		if err != nil {
			return
		}
		// What decodes encodes and decodes to the same.
		again, err := DecodeProto(AppendProto(nil, streams), Limits{})
		if err != nil || len(again) != len(streams) {
			t.Fatalf("re-decode: %v (%d vs %d streams)", err, len(again), len(streams))
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"streams":[{"stream":{"job":"api"},"values":[["1764756000000000000","hello",{"k":"v"}]]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		streams, err := DecodeJSON(b, Limits{MaxLineBytes: 1 << 20, MaxLabels: 30, MaxEntriesPerBody: 10000})
		if err != nil {
			return
		}
		for _, s := range streams {
			if len(s.Labels) == 0 {
				t.Fatal("a stream without labels accepted")
			}
		}
	})
}
