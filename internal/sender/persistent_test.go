package sender

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/queue"
)

func persistentConfig(dir string) Config {
	cfg := queueConfig(100, 2, queue.Block, time.Second)
	cfg.Retry.InitialInterval, cfg.Retry.MaxInterval = 10*time.Millisecond, 10*time.Millisecond
	cfg.Retry.MaxElapsedTime = 0 // until shutdown
	cfg.Queue.Persistent = true
	cfg.Queue.Directory = dir
	return cfg
}

// recorder keeps the seq numbers of every span delivered to it.
type recorder struct {
	mu   sync.Mutex
	seqs []int64
	t    *testing.T
}

func (r *recorder) send(_ context.Context, b *batch.Batch) error {
	s := seqs(r.t, b)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, s...)
	return nil
}

func (r *recorder) got() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.seqs))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPersistentRestart: data acknowledged while the backend is unreachable (or hangs) stays in
// the WAL through Shutdown, is not counted as lost, and goes out, exactly once, after a restart.
func TestPersistentRestart(t *testing.T) {
	f := func(name string, mutate func(*Config), down SendFunc, grace time.Duration) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := persistentConfig(dir)
			mutate(&cfg)

			e := newEnv()
			var attempts sync.WaitGroup
			attempts.Add(1)
			var once sync.Once
			s := mustNew(t, e, cfg, func(ctx context.Context, b *batch.Batch) error {
				once.Do(attempts.Done)
				return down(ctx, b)
			})
			first := 0
			for _, n := range []int{2, 3, 4} {
				if err := s.Consume(context.Background(), encodedTraces(t, n, first)); err != nil {
					t.Fatal(err)
				}
				first += n
			}
			attempts.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if e.cnt.Get(component.Dropped) != 0 || e.cnt.Get(component.Sent) != 0 {
				t.Fatalf("first run counted dropped %d sent %d, want 0 and 0", e.cnt.Get(component.Dropped), e.cnt.Get(component.Sent))
			}
			if out := e.logs.String(); !strings.Contains(out, "keeps unsent data") || !strings.Contains(out, "items=9") {
				t.Fatalf("what stays in the WAL is not logged:\n%s", out)
			}

			e2 := newEnv()
			r := &recorder{t: t}
			s2 := mustNew(t, e2, cfg, r.send)
			waitFor(t, "the replayed data", func() bool { return len(r.got()) >= 9 })
			if err := s2.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := r.got(); !slices.Equal(got, seqRange(0, 9)) || e2.cnt.Get(component.Sent) != 9 {
				t.Fatalf("after restart the backend got %v (counted %d), want seq 0..8 once each", got, e2.cnt.Get(component.Sent))
			}
			if !strings.Contains(e2.logs.String(), "persistent queue is empty") {
				t.Fatalf("second run did not empty the WAL:\n%s", e2.logs)
			}

			// A third start finds nothing to send: delivered data was forgotten.
			e3 := newEnv()
			r3 := &recorder{t: t}
			s3 := mustNew(t, e3, cfg, r3.send)
			time.Sleep(50 * time.Millisecond)
			_ = s3.Shutdown(context.Background())
			if len(r3.got()) != 0 {
				t.Fatalf("third run sent %v again", r3.got())
			}
		})
	}
	unreachable := func(context.Context, *batch.Batch) error {
		return consumererror.NewRetryable(errors.New("dial tcp 127.0.0.1:4317: connection refused"), 0)
	}
	hang := func(ctx context.Context, _ *batch.Batch) error { <-ctx.Done(); return ctx.Err() }
	none := func(*Config) {}
	f("unreachable", none, unreachable, 5*time.Second)
	f("unreachable, batching", func(c *Config) {
		c.Queue.Batch = &BatchConfig{MinSize: 5, FlushTimeout: time.Millisecond, Sizer: queue.SizeItems}
	}, unreachable, 5*time.Second)
	f("backend hangs past the grace period", none, hang, 50*time.Millisecond)
}

// TestPersistentGivesUp: with max_elapsed_time set, a batch the backend never takes is dropped,
// counted and forgotten by the WAL; it is not sent after a restart.
func TestPersistentGivesUp(t *testing.T) {
	cfg := persistentConfig(t.TempDir())
	cfg.Retry.MaxElapsedTime = 30 * time.Millisecond
	e := newEnv()
	s := mustNew(t, e, cfg, func(context.Context, *batch.Batch) error { return errBoom })
	if err := s.Consume(context.Background(), encodedTraces(t, 3, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch to be given up", func() bool { return e.cnt.Get(component.Dropped) == 3 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &recorder{t: t}
	s2 := mustNew(t, newEnv(), cfg, r.send)
	time.Sleep(50 * time.Millisecond)
	_ = s2.Shutdown(context.Background())
	if len(r.got()) != 0 {
		t.Fatalf("a dropped batch was sent after restart: %v", r.got())
	}
}

// TestPersistentBeforeStart: the WAL opens at Start; until then Consume asks the client to retry.
func TestPersistentBeforeStart(t *testing.T) {
	cfg := persistentConfig(t.TempDir())
	e := newEnv()
	s := mustNewStopped(t, e, cfg, (&sink{}).send)
	err := s.Consume(context.Background(), traces(2))
	if _, ok := consumererror.RetryAfter(err); !ok || e.cnt.Get(component.Failed) != 2 {
		t.Fatalf("Consume before Start: %v, failed %d", err, e.cnt.Get(component.Failed))
	}
}

// TestPersistentDirectory: each exporter gets its own subdirectory, and the WAL metrics exist.
func TestPersistentDirectory(t *testing.T) {
	dir := t.TempDir()
	var opened []string
	open := func(o queue.Options, w *queue.WALOptions) (queue.Queue, error) {
		opened = append(opened, w.Dir)
		return openQueue(o, w)
	}
	cfg := persistentConfig(dir)
	cfg.Queue.MaxSizeMiB = 3
	e := newEnv()
	e.set.ID = component.ID{Type: "otlp", Name: "eu:1"}
	s := mustNew(t, e, cfg, (&sink{}).send, withOpen(open))
	if want := filepath.Join(dir, "otlp-eu%3A1"); !slices.Equal(opened, []string{want}) {
		t.Fatalf("opened %v, want %s", opened, want)
	}
	for _, name := range []string{"vigil_exporter_wal_segments", "vigil_exporter_wal_bytes", "vigil_exporter_wal_corruptions_total",
		"vigil_exporter_queue_capacity_bytes", "vigil_exporter_queue_size"} {
		if _, ok := metric(t, e, name); !ok {
			t.Errorf("%s not registered", name)
		}
	}
	_ = s.Shutdown(context.Background())
}
