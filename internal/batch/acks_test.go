package batch_test

import (
	"testing"

	"github.com/vigilhq/vigil/internal/ack"
	"github.com/vigilhq/vigil/internal/batch"
)

// TestAcksFollowTheData: every batch made from batches carries their completion handles:
// shares and clones the same, a split's every part all of them, a concat the union, in each
// representation (encoded, decoded, and the mixed concat that decodes).
func TestAcksFollowTheData(t *testing.T) {
	handles := func(s ack.Set) []*ack.Handle { return s }
	same := func(t *testing.T, what string, got, want ack.Set) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s carries %d handles, want %d", what, len(got), len(want))
		}
		for i := range got {
			if handles(got)[i] != handles(want)[i] {
				t.Fatalf("%s: handle %d differs", what, i)
			}
		}
	}
	for _, s := range signals {
		t.Run(s.sig.String(), func(t *testing.T) {
			a, b, c := ack.New(), ack.New(), ack.New()
			enc := s.fromEncoded(t, 4, 5, 0)
			enc.SetAcks(a.Set())
			enc.SetEndToEnd(true)
			dec := s.decoded(2, 5, 100)
			dec.SetAcks(b.Set())
			enc2 := s.fromEncoded(t, 1, 3, 200)
			enc2.SetAcks(c.Set())

			same(t, "share", enc.Share().Acks(), a.Set())
			same(t, "clone", enc.Clone().Acks(), a.Set())
			same(t, "clone of decoded", dec.Clone().Acks(), b.Set())
			if !enc.Share().EndToEnd() || !enc.Clone().EndToEnd() {
				t.Error("share or clone lost the end-to-end mark")
			}

			parts, err := batch.Split(enc.Clone(), 7)
			if err != nil || len(parts) < 2 {
				t.Fatalf("split: %d parts, %v", len(parts), err)
			}
			for i, p := range parts {
				same(t, "split part", p.Acks(), a.Set())
				if !p.EndToEnd() {
					t.Errorf("split part %d lost the end-to-end mark", i)
				}
			}
			dparts, err := batch.Split(dec.Clone(), 3)
			if err != nil || len(dparts) < 2 {
				t.Fatalf("split decoded: %d parts, %v", len(dparts), err)
			}
			for _, p := range dparts {
				same(t, "split part of decoded", p.Acks(), b.Set())
			}

			encOnly, err := batch.Concat([]*batch.Batch{enc.Clone(), enc2.Clone()})
			if err != nil {
				t.Fatal(err)
			}
			same(t, "concat of encoded", encOnly.Acks(), ack.Set{a, c})
			if !encOnly.EndToEnd() {
				t.Error("concat lost a part's end-to-end mark")
			}
			mixed, err := batch.Concat([]*batch.Batch{enc.Clone(), dec.Clone(), enc2.Clone()})
			if err != nil {
				t.Fatal(err)
			}
			same(t, "concat of mixed", mixed.Acks(), ack.Set{a, b, c})
			unacked := s.fromEncoded(t, 1, 1, 300)
			alone, err := batch.Concat([]*batch.Batch{unacked, enc2.Clone()})
			if err != nil {
				t.Fatal(err)
			}
			same(t, "concat where one part has handles", alone.Acks(), c.Set())
			none, err := batch.Concat([]*batch.Batch{s.fromEncoded(t, 1, 1, 0), s.fromEncoded(t, 1, 1, 1)})
			if err != nil {
				t.Fatal(err)
			}
			if none.Acks() != nil || none.EndToEnd() {
				t.Errorf("concat of batches without handles carries %v (end to end %v)", none.Acks(), none.EndToEnd())
			}
		})
	}
}

// TestConcatAcksAllocations: joining batches that carry one handle each costs one allocation
// for the union, whatever the number of parts.
func TestConcatAcksAllocations(t *testing.T) {
	s := signals[0]
	raw := s.encoded(t, 1, 10, 0)
	hs := make([]*ack.Handle, 8)
	for i := range hs {
		hs[i] = ack.New()
	}
	parts := make([]*batch.Batch, len(hs))
	base := testing.AllocsPerRun(50, func() {
		for i := range parts {
			parts[i], _ = batch.FromEncoded(s.sig, raw)
		}
		_, _ = batch.Concat(parts)
	})
	with := testing.AllocsPerRun(50, func() {
		for i := range parts {
			parts[i], _ = batch.FromEncoded(s.sig, raw)
			parts[i].SetAcks(hs[i].Set())
		}
		_, _ = batch.Concat(parts)
	})
	if with-base != 1 {
		t.Errorf("concat of 8 batches with handles: %.0f allocations more than without, want 1", with-base)
	}
}
