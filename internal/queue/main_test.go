package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/testdata"
)

func TestMain(m *testing.M) {
	// The crash test runs this binary as the writer it kills; see crash_test.go.
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, FsyncPolicy(os.Getenv(crashFsyncEnv)))
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

var discard = slog.New(slog.DiscardHandler)

// mk returns an encoded traces batch of items spans whose seq attributes start at seq.
func mk(t testing.TB, seq, items int) *batch.Batch {
	t.Helper()
	b, err := mkBatch(seq, items)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mkBatch(seq, items int) (*batch.Batch, error) {
	enc, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(testdata.Traces(1, items, seq))
	if err != nil {
		return nil, err
	}
	return batch.FromEncoded(batch.Traces, enc)
}

// seqOf reads the seq attribute of a batch's first span.
func seqOf(t testing.TB, b *batch.Batch) int {
	t.Helper()
	s, err := batchSeq(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func batchSeq(b *batch.Batch) (int, error) {
	td, err := b.Traces()
	if err != nil {
		return 0, err
	}
	if td.SpanCount() == 0 {
		return 0, errors.New("no spans")
	}
	v, ok := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("seq")
	if !ok {
		return 0, errors.New("span without seq")
	}
	return int(v.Int()), nil
}

// walOpts are test defaults: a fresh directory, a roomy queue, no log noise.
func walOpts(t testing.TB) WALOptions {
	return WALOptions{Dir: t.TempDir(), Options: Options{Capacity: 1000}, Logger: discard}
}

// testCfg never checkpoints in the background, so that what a crash replays is exact.
var testCfg = walConfig{checkpointEvery: time.Hour}

func open(t testing.TB, opts WALOptions) *wal {
	t.Helper()
	w, err := openWAL(opts, testCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func put(t testing.TB, q Queue, seqs ...int) {
	t.Helper()
	for _, s := range seqs {
		if err := q.Put(context.Background(), mk(t, s, 1)); err != nil {
			t.Fatalf("Put(%d): %v", s, err)
		}
	}
}

func span(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// drain takes everything waiting (with a cancelled context, so it never blocks), acknowledges
// it, and returns the seqs in the order they came.
func drain(t testing.TB, q Queue) []int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []int
	for {
		b, done, ok := q.Get(ctx)
		if !ok {
			return got
		}
		got = append(got, seqOf(t, b))
		done(true)
	}
}

func wantSeqs(t testing.TB, what string, got, want []int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func copyFile(t testing.TB, dst, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
