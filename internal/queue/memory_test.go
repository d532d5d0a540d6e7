package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

func TestMemorySizers(t *testing.T) {
	one := mk(t, 0, 4) // every batch in this test: 4 items, size bytes
	size := one.EncodedSize()
	tests := []struct {
		name     string
		sizer    Sizer
		capacity int
		fit      int // batches that fit
	}{
		{"requests", SizeRequests, 3, 3},
		{"default sizer is requests", "", 2, 2},
		{"items", SizeItems, 10, 2},
		{"items exact", SizeItems, 12, 3},
		{"bytes", SizeBytes, 2*size + size/2, 2},
		{"bytes exact", SizeBytes, 3 * size, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewMemory(Options{Sizer: tt.sizer, Capacity: tt.capacity, WhenFull: DropNewest})
			for i := range tt.fit {
				if err := q.Put(context.Background(), mk(t, i, 4)); err != nil {
					t.Fatalf("Put %d: %v", i, err)
				}
			}
			if err := q.Put(context.Background(), mk(t, 99, 4)); !errors.Is(err, ErrFull) {
				t.Fatalf("Put past capacity: got %v, want ErrFull", err)
			}
			s := q.Stats()
			if s.Batches != tt.fit || s.Items != 4*tt.fit || s.Bytes != int64(tt.fit*size) || s.Capacity != tt.capacity {
				t.Fatalf("Stats = %+v, want %d batches, %d items, %d bytes", s, tt.fit, 4*tt.fit, tt.fit*size)
			}
			wantSeqs(t, "FIFO", drain(t, q), span(0, tt.fit))
		})
	}
}

func TestMemoryPolicies(t *testing.T) {
	f := func(policy WhenFull, wantErr error, wantDropped, wantLeft []int) {
		t.Helper()
		var dropped []int
		q := NewMemory(Options{Capacity: 2, WhenFull: policy, OnDrop: func(b *batch.Batch) { dropped = append(dropped, seqOf(t, b)) }})
		put(t, q, 0, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := q.Put(ctx, mk(t, 2, 1))
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("%s: Put into a full queue = %v, want %v", policy, err, wantErr)
		}
		wantSeqs(t, string(policy)+" dropped", dropped, wantDropped)
		wantSeqs(t, string(policy)+" left", drain(t, q), wantLeft)
	}
	f(DropNewest, ErrFull, nil, []int{0, 1})
	f(DropOldest, nil, []int{0}, []int{1, 2})
	f(Block, ErrFull, nil, []int{0, 1})
	f(Block, context.DeadlineExceeded, nil, []int{0, 1}) // Block says why it gave up
}

func TestMemoryBlockWaitsForDone(t *testing.T) {
	q := NewMemory(Options{Capacity: 1, WhenFull: Block})
	put(t, q, 0)
	b, done, ok := q.Get(context.Background())
	if !ok || seqOf(t, b) != 0 {
		t.Fatal("Get")
	}
	errc := make(chan error, 1)
	go func() { errc <- q.Put(context.Background(), mk(t, 1, 1)) }()
	select {
	case err := <-errc:
		t.Fatalf("Put returned %v while the in-flight batch still held the room", err)
	case <-time.After(20 * time.Millisecond):
	}
	done(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	done(true) // a second call must not free the room again
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := q.Put(ctx, mk(t, 2, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("Put into a full queue after a double done = %v, want ErrFull", err)
	}
}

func TestMemoryDropOldestSparesInFlight(t *testing.T) {
	var dropped int
	q := NewMemory(Options{Capacity: 2, WhenFull: DropOldest, OnDrop: func(*batch.Batch) { dropped++ }})
	put(t, q, 0, 1)
	for range 2 {
		if _, _, ok := q.Get(context.Background()); !ok {
			t.Fatal("Get")
		}
	}
	if err := q.Put(context.Background(), mk(t, 2, 1)); !errors.Is(err, ErrFull) || dropped != 0 {
		t.Fatalf("Put with everything in flight = %v (dropped %d), want ErrFull and nothing dropped", err, dropped)
	}
}

func TestMemoryOversize(t *testing.T) {
	q := NewMemory(Options{Sizer: SizeItems, Capacity: 10})
	if err := q.Put(context.Background(), mk(t, 0, 50)); err != nil {
		t.Fatalf("an oversize batch into an empty queue: %v", err)
	}
	if err := q.Put(context.Background(), mk(t, 100, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("Put beside an oversize batch = %v, want ErrFull", err)
	}
	wantSeqs(t, "drain", drain(t, q), []int{0})
	if err := q.Put(context.Background(), mk(t, 200, 50)); err != nil {
		t.Fatalf("an oversize batch once drained: %v", err)
	}
}

func TestMemoryOldest(t *testing.T) {
	q := NewMemory(Options{Capacity: 10})
	if !q.Stats().Oldest.IsZero() {
		t.Fatal("Oldest of an empty queue is set")
	}
	before := time.Now()
	put(t, q, 0)
	time.Sleep(2 * time.Millisecond)
	put(t, q, 1)
	first := q.Stats().Oldest
	if first.Before(before) || time.Since(first) < 2*time.Millisecond {
		t.Fatalf("Oldest = %v, want the first Put's time (after %v)", first, before)
	}
	_, done, _ := q.Get(context.Background())
	done(true)
	if second := q.Stats().Oldest; !second.After(first) {
		t.Fatalf("Oldest after taking the first = %v, want after %v", second, first)
	}
}

func TestMemoryClose(t *testing.T) {
	q := NewMemory(Options{Capacity: 10, WhenFull: Block})
	put(t, q, 0, 1)
	getc := make(chan bool)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(context.Background(), mk(t, 2, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
	wantSeqs(t, "Get after Close returns what is left", drain(t, q), []int{0, 1})
	go func() {
		_, _, ok := q.Get(context.Background())
		getc <- ok
	}()
	if <-getc {
		t.Fatal("Get on a closed, empty queue returned a batch")
	}
	if err := q.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestMemoryCloseWakesWaiters(t *testing.T) {
	q := NewMemory(Options{Capacity: 1, WhenFull: Block})
	getc := make(chan func(bool))
	go func() {
		_, done, _ := q.Get(context.Background())
		getc <- done
	}()
	time.Sleep(10 * time.Millisecond)
	put(t, q, 0)
	done := <-getc
	if done == nil {
		t.Fatal("a waiting Get missed the Put")
	}
	done(false)
	put(t, q, 1)
	putc := make(chan error)
	go func() { putc <- q.Put(context.Background(), mk(t, 2, 1)) }()
	time.Sleep(10 * time.Millisecond)
	_ = q.Close()
	if err := <-putc; !errors.Is(err, ErrClosed) {
		t.Fatalf("a blocked Put at Close = %v, want ErrClosed", err)
	}
}

func TestMemoryGetCancelled(t *testing.T) {
	q := NewMemory(Options{Capacity: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, ok := q.Get(ctx); ok {
		t.Fatal("Get on an empty queue returned a batch")
	}
}
