package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/testdata"
)

// TestEntryFullRingPushesBack: with the only worker stuck and the ring full, a caller waits
// fullWait and is then told to back off (not held open), and a caller that gave up while queued
// is not run at all once the worker frees up.
func TestEntryFullRingPushesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var ran atomic.Int32
		e := newEntry(2, 1, component.ConsumerFunc(func(context.Context, *batch.Batch) error {
			ran.Add(1)
			<-release
			return nil
		}))
		e.start()
		b := func() *batch.Batch { return batch.FromTraces(testdata.Traces(1, 1, 0)) }
		results := make(chan error, 4)
		go func() { results <- e.Consume(context.Background(), b()) }() // taken by the worker
		synctest.Wait()
		gaveUp, cancel := context.WithCancel(context.Background())
		go func() { results <- e.Consume(gaveUp, b()) }()               // queued
		go func() { results <- e.Consume(context.Background(), b()) }() // queued
		synctest.Wait()

		start := time.Now()
		err := e.Consume(context.Background(), b()) // ring full
		if !consumererror.IsBackpressure(err) || time.Since(start) != fullWait {
			t.Fatalf("full ring: err %v after %v; want backpressure after %v", err, time.Since(start), fullWait)
		}

		cancel()
		synctest.Wait()
		close(release)
		for i := 0; i < 3; i++ {
			<-results
		}
		if n := ran.Load(); n != 2 {
			t.Fatalf("worker ran %d batches, want 2 (the abandoned one skipped)", n)
		}
		if err := e.shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
