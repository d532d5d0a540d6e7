package pipeline

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/consumererror"
	"github.com/vigilhq/vigil/internal/testdata"
)

// reload loads yaml twice (the config and its untouched baseline) and applies it.
func reload(t *testing.T, w *world, g *Graph, yaml string) ([]Change, error) {
	t.Helper()
	f := w.factories(t)
	cfg, err := config.Load("reload.yaml", []byte(yaml), f)
	if err != nil {
		t.Fatal(err)
	}
	base, err := config.Load("reload.yaml", []byte(yaml), f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.Reload(ctx, cfg, base)
}

func (w *world) consumer(id string, sig batch.Signal) component.Consumer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.receivers[id][sig]
}

func (w *world) since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events[n:])
}

func (w *world) eventCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

func changes(cs []Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return strings.Join(s, "; ")
}

func TestReloadUnchangedTouchesNothing(t *testing.T) {
	w, g, _ := build(t, twoPipelines)
	g.SetBaseline(mustLoad(t, w, twoPipelines))
	stop := startStop(t, g)
	defer stop()
	n := w.eventCount()
	cs, err := reload(t, w, g, twoPipelines)
	if err != nil || len(cs) != 0 {
		t.Fatalf("reload of the same config: changes %q, err %v", changes(cs), err)
	}
	if ev := w.since(n); len(ev) != 0 {
		t.Errorf("components started or stopped: %v", ev)
	}
}

func mustLoad(t *testing.T, w *world, yaml string) *config.Config {
	t.Helper()
	c, err := config.Load("test.yaml", []byte(yaml), w.factories(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReloadReplacesOnlyWhatChanged: one exporter's config changes, a processor is added to one
// pipeline, a receiver's config changes. Only those are rebuilt; the other receiver keeps
// running, and what the held pipeline buffered is flushed through the new exporter.
func TestReloadReplacesOnlyWhatChanged(t *testing.T) {
	w, g, tel := build(t, twoPipelines)
	g.SetBaseline(mustLoad(t, w, twoPipelines))
	stop := startStop(t, g)
	ctx := context.Background()
	if err := w.consumer("src", batch.Traces).Consume(ctx, encodedTraces(t, 3, 0)); err != nil {
		t.Fatal(err)
	}
	n := w.eventCount()
	next := strings.NewReplacer(
		"sink/tagged: {}", "sink/tagged: {tag: v2}",
		"receivers: {src: {}, src/b: {}}", "receivers: {src: {}, src/b: {tag: v2}}",
		"      exporters: [sink/plain, sink/both]", "      processors: [tag]\n      exporters: [sink/plain, sink/both]",
	).Replace(twoPipelines)
	cs, err := reload(t, w, g, next)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changes(cs), "exporter sink/tagged: replaced; pipeline traces/plain: replaced; receiver src/b: replaced"; got != want {
		t.Errorf("changes %q, want %q", got, want)
	}
	ev := w.since(n)
	for _, want := range []string{"start tag@traces/plain", "stop sink/tagged", "start sink/tagged", "stop src/b", "start src/b"} {
		if !slices.Contains(ev, want) {
			t.Errorf("events lack %q: %v", want, ev)
		}
	}
	for _, kept := range []string{"src", "sink/plain", "sink/both", "hold@traces/tagged", "tag@traces/tagged"} {
		if slices.Contains(ev, "stop "+kept) {
			t.Errorf("%s was restarted though its config did not change: %v", kept, ev)
		}
	}
	// The new pipeline tags; the replaced exporter's metric is the new one's.
	if err := w.consumer("src/b", batch.Traces).Consume(ctx, encodedTraces(t, 2, 100)); err != nil {
		t.Fatal(err)
	}
	for _, b := range w.sinks["sink/plain"].Batches()[1:] {
		td, _ := b.Traces()
		if v, ok := td.ResourceSpans().At(0).Resource().Attributes().Get("tagged"); !ok || v.Str() != "traces/plain" {
			t.Error("data after the reload did not go through the new pipeline's processor")
		}
	}
	m := scrape(t, tel)
	if !strings.Contains(m, `test_sink_tag_info{component="sink/tagged",kind="exporter",tag="v2"} 1`) || strings.Contains(m, `component="sink/tagged",kind="exporter",tag=""`) {
		t.Errorf("the replaced exporter's metrics are not the new one's:\n%s", grep(m, "test_sink"))
	}
	stop()
	// The 3 spans held in traces/tagged's hold processor were flushed into the new sink/tagged.
	if got := w.sinks["sink/tagged"].Items(); got != 3 {
		t.Errorf("new sink/tagged got %d items, want the 3 the pipeline held", got)
	}
}

// TestReloadFailureKeepsTheOldGraph: a component that cannot be created or started leaves what
// runs as it was, metrics included.
func TestReloadFailureKeepsTheOldGraph(t *testing.T) {
	w, g, tel := build(t, twoPipelines)
	g.SetBaseline(mustLoad(t, w, twoPipelines))
	stop := startStop(t, g)
	defer stop()
	before := scrape(t, tel)
	for _, tc := range []struct{ change, want string }{
		{"sink/tagged: {fail_create: true}", `create exporter "sink/tagged": cannot create`},
		{"sink/new: {fail_start: true}", "start exporter sink/new: cannot start"},
	} {
		next := strings.Replace(twoPipelines, "sink/tagged: {}", "sink/tagged: {}, "+tc.change, 1)
		if strings.HasPrefix(tc.change, "sink/tagged") {
			next = strings.Replace(twoPipelines, "sink/tagged: {}", tc.change, 1)
		} else {
			next = strings.Replace(next, "exporters: [sink/tagged, sink/both]", "exporters: [sink/tagged, sink/both, sink/new]", 1)
		}
		n := w.eventCount()
		_, err := reload(t, w, g, next)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: error %v, want %q", tc.change, err, tc.want)
		}
		for _, e := range w.since(n) {
			if strings.HasPrefix(e, "stop ") && !strings.Contains(e, "new") && !strings.Contains(e, "@") {
				t.Errorf("%s: a running component was stopped: %v", tc.change, w.since(n))
			}
		}
		if after := scrape(t, tel); grep(after, "test_sink") != grep(before, "test_sink") || !strings.Contains(after, `vigil_pipeline_queue_capacity{pipeline="traces/tagged"}`) {
			t.Errorf("%s: metrics changed by a failed reload:\n%s", tc.change, grep(after, "test_sink"))
		}
	}
	if err := w.consumer("src", batch.Traces).Consume(context.Background(), encodedTraces(t, 1, 0)); err != nil {
		t.Fatalf("the old graph does not take data after a failed reload: %v", err)
	}
	// And a later good reload still works.
	if _, err := reload(t, w, g, strings.Replace(twoPipelines, "sink/plain: {}", "sink/plain: {tag: x}", 1)); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRemoves: a pipeline and its exporter are removed; what the pipeline held is flushed
// into the exporter before it stops, and the receiver it fed stops with it.
func TestReloadRemoves(t *testing.T) {
	w, g, _ := build(t, twoPipelines)
	g.SetBaseline(mustLoad(t, w, twoPipelines))
	stop := startStop(t, g)
	defer stop()
	if err := w.consumer("src", batch.Traces).Consume(context.Background(), encodedTraces(t, 4, 0)); err != nil {
		t.Fatal(err)
	}
	tagged := w.sinks["sink/tagged"]
	cs, err := reload(t, w, g, `
receivers: {src: {}}
exporters: {sink/plain: {}, sink/both: {}}
service: {pipelines: {traces/plain: {receivers: [src], exporters: [sink/plain, sink/both]}}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changes(cs), "receiver src/b: removed; pipeline traces/tagged: removed; exporter sink/tagged: removed"; got != want {
		t.Errorf("changes %q, want %q", got, want)
	}
	if tagged.Items() != 4 {
		t.Errorf("the removed pipeline's held data: %d items reached its exporter, want 4", tagged.Items())
	}
}

// TestReloadUnderLoad: senders push batches without pause while the config is reloaded again
// and again (an exporter, a pipeline's processors, a receiver and the pipelines a receiver
// feeds change each time). Every batch a sender was told was taken reaches an exporter; a
// refused one is retried, as a client does.
func TestReloadUnderLoad(t *testing.T) {
	configs := []string{twoPipelines,
		strings.NewReplacer("sink/both: {}", "sink/both: {tag: a}", "processors: [tag, hold]", "processors: [hold]").Replace(twoPipelines),
		strings.NewReplacer("src/b: {}", "src/b: {tag: b}", "sink/plain: {}", "sink/plain: {tag: b}").Replace(twoPipelines),
		strings.Replace(twoPipelines, "receivers: [src, src/b]", "receivers: [src/b]", 1),
	}
	w, g, _ := build(t, configs[0])
	g.SetBaseline(mustLoad(t, w, configs[0]))
	stop := startStop(t, g)
	var taken, refused atomic.Int64
	var sent sync.Map // first span id of each taken batch
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for s, src := range []string{"src", "src/b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				first := (s*1_000_000 + i) * 10
				for ctx.Err() == nil {
					err := w.consumer(src, batch.Traces).Consume(context.Background(), batch.FromTraces(testdata.Traces(1, 10, first)))
					if err == nil {
						taken.Add(10)
						sent.Store(first, true)
						break
					}
					if _, ok := consumererror.RetryAfter(err); !ok {
						t.Errorf("a permanent refusal during reload: %v", err)
						return
					}
					refused.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 12; i++ {
		time.Sleep(20 * time.Millisecond)
		if _, err := reload(t, w, g, configs[i%len(configs)]); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	stop()
	// Every taken batch reached sink/both (both pipelines feed it) in one of its instances.
	got := map[int]bool{}
	for _, s := range w.allSinks["sink/both"] {
		for _, b := range s.Batches() {
			td, _ := b.Traces()
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			seq, _ := spans.At(0).Attributes().Get("seq")
			got[int(seq.Int())] = true
		}
	}
	lost := 0
	sent.Range(func(k, _ any) bool {
		if !got[k.(int)] {
			lost++
		}
		return true
	})
	// Pipelines are replaced make-before-break and a batch that reaches an old entry goes on to
	// its successor, so in this world (no receiver restarts its listener) nothing is refused.
	if refused.Load() != 0 {
		t.Errorf("%d batches refused during reloads, want none", refused.Load())
	}
	if lost > 0 || taken.Load() == 0 {
		t.Fatalf("%d of %d taken batches never reached an exporter (%d refusals retried)", lost, taken.Load()/10, refused.Load())
	}
	t.Logf("%d spans taken through 12 reloads, %d refusals retried, none lost", taken.Load(), refused.Load())
}
