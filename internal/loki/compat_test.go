package loki

import (
	"testing"
	"time"

	"github.com/grafana/loki/pkg/push"
)

// TestWireCompatibleWithLoki: what Vigil writes, Loki's own push types read the same; what
// they write, Vigil reads the same (github.com/grafana/loki/pkg/push, Apache-2.0, test only).
func TestWireCompatibleWithLoki(t *testing.T) {
	in := sample()
	var theirs push.PushRequest
	if err := theirs.Unmarshal(AppendProto(nil, in)); err != nil {
		t.Fatalf("Loki's types cannot read Vigil's request: %v", err)
	}
	if len(theirs.Streams) != len(in) {
		t.Fatalf("%d streams, want %d", len(theirs.Streams), len(in))
	}
	for i, s := range theirs.Streams {
		if s.Labels != FormatLabels(in[i].Labels) || len(s.Entries) != len(in[i].Entries) {
			t.Fatalf("stream %d: %+v", i, s)
		}
		for j, e := range s.Entries {
			want := in[i].Entries[j]
			if !e.Timestamp.Equal(want.Timestamp) || e.Line != want.Line || len(e.StructuredMetadata) != len(want.Metadata) {
				t.Errorf("stream %d entry %d: %+v, want %+v", i, j, e, want)
			}
		}
	}

	t0 := time.Date(2026, 12, 3, 10, 0, 0, 987654321, time.UTC)
	req := push.PushRequest{Streams: []push.Stream{{
		Labels: `{job="promtail", host="node-1"}`,
		Entries: []push.Entry{
			{Timestamp: t0, Line: "from Loki's own encoder", StructuredMetadata: push.LabelsAdapter{{Name: "pod", Value: "p-1"}}},
			{Timestamp: t0.Add(time.Millisecond), Line: "second"},
		},
	}}}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := DecodeProto(b, Limits{})
	if err != nil {
		t.Fatalf("Vigil cannot read Loki's request: %v", err)
	}
	if len(ours) != 1 || FormatLabels(ours[0].Labels) != `{host="node-1", job="promtail"}` || len(ours[0].Entries) != 2 ||
		!ours[0].Entries[0].Timestamp.Equal(t0) || ours[0].Entries[0].Metadata[0] != (Label{"pod", "p-1"}) || ours[0].Entries[1].Line != "second" {
		t.Errorf("decoded %+v", ours)
	}
}
