package ring

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond because parked goroutines give no other observable
// signal; the deadline turns a bug into a failure instead of a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewCapacityRounding(t *testing.T) {
	tests := []struct {
		in, want int
	}{
		{1, 2}, // a single cell can't distinguish full from empty
		{2, 2},
		{3, 4},
		{4, 4},
		{5, 8},
		{63, 64},
		{64, 64},
		{65, 128},
		{1000, 1024},
		{1 << 16, 1 << 16},
	}
	for _, tt := range tests {
		r := New[int](tt.in)
		if got := r.Cap(); got != tt.want {
			t.Errorf("New(%d).Cap() = %d, want %d", tt.in, got, tt.want)
		}
		n := 0
		for r.TryPush(n) {
			n++
		}
		if n != tt.want {
			t.Errorf("New(%d) accepted %d pushes, want %d", tt.in, n, tt.want)
		}
	}
}

func TestNewInvalidCapacityPanics(t *testing.T) {
	for _, c := range []int{0, -1, -1 << 40} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", c)
				}
			}()
			New[int](c)
		}()
	}
}

func TestFIFOSingleThreaded(t *testing.T) {
	f := func(t *testing.T, capacity, rounds, batch int) {
		t.Helper()
		r := New[int](capacity)
		next, want := 0, 0
		// Several laps so sequence numbers wrap around the cell array.
		for range rounds {
			for range batch {
				if !r.TryPush(next) {
					t.Fatalf("TryPush(%d) failed with Len=%d Cap=%d", next, r.Len(), r.Cap())
				}
				next++
			}
			if got := r.Len(); got != batch {
				t.Fatalf("Len() = %d, want %d", got, batch)
			}
			for range batch {
				v, ok := r.TryPop()
				if !ok || v != want {
					t.Fatalf("TryPop() = %d, %v; want %d, true", v, ok, want)
				}
				want++
			}
		}
		if _, ok := r.TryPop(); ok {
			t.Fatal("TryPop on drained ring succeeded")
		}
	}
	t.Run("cap2/batch1", func(t *testing.T) { f(t, 2, 10, 1) })
	t.Run("cap2/batch2", func(t *testing.T) { f(t, 2, 10, 2) })
	t.Run("cap8/batch3", func(t *testing.T) { f(t, 8, 50, 3) })
	t.Run("cap8/full", func(t *testing.T) { f(t, 8, 50, 8) })
	t.Run("cap64/batch63", func(t *testing.T) { f(t, 64, 10, 63) })
}

func TestBlockingFIFOSingleThreaded(t *testing.T) {
	ctx := context.Background()
	r := New[string](4)
	in := []string{"a", "b", "c", "d"}
	for _, s := range in {
		if err := r.Push(ctx, s); err != nil {
			t.Fatalf("Push(%q) = %v", s, err)
		}
	}
	for _, want := range in {
		got, err := r.Pop(ctx)
		if err != nil || got != want {
			t.Fatalf("Pop() = %q, %v; want %q, nil", got, err, want)
		}
	}
}

func TestFullAndEmpty(t *testing.T) {
	r := New[int](4)
	if v, ok := r.TryPop(); ok || v != 0 {
		t.Fatalf("TryPop on empty = %d, %v; want 0, false", v, ok)
	}
	if r.Len() != 0 {
		t.Fatalf("Len() on empty = %d", r.Len())
	}
	for i := range 4 {
		if !r.TryPush(i) {
			t.Fatalf("TryPush(%d) failed before full", i)
		}
	}
	if r.TryPush(99) {
		t.Fatal("TryPush succeeded on full ring")
	}
	if r.Len() != 4 {
		t.Fatalf("Len() on full = %d, want 4", r.Len())
	}
	// One pop frees exactly one slot.
	if v, _ := r.TryPop(); v != 0 {
		t.Fatalf("TryPop() = %d, want 0", v)
	}
	if !r.TryPush(4) {
		t.Fatal("TryPush failed after a pop freed a slot")
	}
	if r.TryPush(5) {
		t.Fatal("TryPush succeeded on refilled ring")
	}
	for want := 1; want <= 4; want++ {
		if v, ok := r.TryPop(); !ok || v != want {
			t.Fatalf("TryPop() = %d, %v; want %d, true", v, ok, want)
		}
	}
	if _, ok := r.TryPop(); ok {
		t.Fatal("TryPop succeeded on drained ring")
	}
}

func TestPopClearsSlot(t *testing.T) {
	r := New[*[64]byte](2)
	p := new([64]byte)
	wp := weak.Make(p)
	r.TryPush(p)
	p = nil
	if got, ok := r.TryPop(); !ok || got == nil {
		t.Fatal("TryPop lost the pointer")
	}
	// The ring is the only thing that could still reference it now.
	for range 3 {
		runtime.GC()
	}
	if wp.Value() != nil {
		t.Fatal("popped value still reachable: slot not cleared")
	}
	runtime.KeepAlive(r)
}

func TestNoAllocs(t *testing.T) {
	r := New[int](8)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		r.TryPush(1)
		r.TryPop()
	}); n != 0 {
		t.Errorf("TryPush/TryPop allocate %v times per run", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Push(ctx, 1)
		_, _ = r.Pop(ctx)
	}); n != 0 {
		t.Errorf("Push/Pop fast path allocates %v times per run", n)
	}
}

func TestCloseDrainsThenErrClosed(t *testing.T) {
	ctx := context.Background()
	r := New[int](8)
	for i := range 3 {
		if err := r.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	r.Close() // idempotent

	if r.TryPush(3) {
		t.Error("TryPush succeeded after Close")
	}
	if err := r.Push(ctx, 3); !errors.Is(err, ErrClosed) {
		t.Errorf("Push after Close = %v, want ErrClosed", err)
	}
	if r.Len() != 3 {
		t.Errorf("Len() after Close = %d, want 3", r.Len())
	}
	for want := range 3 {
		got, err := r.Pop(ctx)
		if err != nil || got != want {
			t.Fatalf("Pop() after Close = %d, %v; want %d, nil", got, err, want)
		}
	}
	for range 2 {
		if _, err := r.Pop(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Pop() on drained closed ring = %v, want ErrClosed", err)
		}
	}
	// Closed wins over a cancelled ctx once there's nothing left, so callers
	// can tell "done" from "gave up".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Pop(cctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Pop(cancelled) on closed ring = %v, want ErrClosed", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	const n = 3
	ctx := context.Background()

	empty := New[int](2)
	full := New[int](2)
	full.TryPush(1)
	full.TryPush(2)

	errs := make(chan error, 2*n)
	for range n {
		go func() {
			_, err := empty.Pop(ctx)
			errs <- err
		}()
		go func() {
			errs <- full.Push(ctx, 3)
		}()
	}
	waitFor(t, "waiters to park", func() bool {
		return empty.popWaiters.Load() == n && full.pushWaiters.Load() == n
	})
	empty.Close()
	full.Close()
	for range 2 * n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("woken waiter returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter not woken by Close")
		}
	}
	// The parked pushers must not have slipped their values in.
	for _, want := range []int{1, 2} {
		if v, err := full.Pop(ctx); err != nil || v != want {
			t.Fatalf("Pop() = %d, %v; want %d, nil", v, err, want)
		}
	}
	if _, err := full.Pop(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop() = %v, want ErrClosed", err)
	}
}

func TestWaitersWokenByProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const n = 4

	t.Run("pop", func(t *testing.T) {
		r := New[int](8)
		got := make(chan int, n)
		for range n {
			go func() {
				v, err := r.Pop(ctx)
				if err != nil {
					t.Errorf("Pop: %v", err)
				}
				got <- v
			}()
		}
		waitFor(t, "consumers to park", func() bool { return r.popWaiters.Load() == n })
		// Back-to-back pushes coalesce into one token; all consumers must
		// still wake (the token is passed on).
		for i := range n {
			r.TryPush(i)
		}
		sum := 0
		for range n {
			sum += <-got
		}
		if sum != 0+1+2+3 {
			t.Errorf("consumers received sum %d, want 6", sum)
		}
	})

	t.Run("push", func(t *testing.T) {
		r := New[int](n)
		for i := range n {
			r.TryPush(i)
		}
		done := make(chan struct{}, n)
		for i := range n {
			go func() {
				if err := r.Push(ctx, n+i); err != nil {
					t.Errorf("Push: %v", err)
				}
				done <- struct{}{}
			}()
		}
		waitFor(t, "producers to park", func() bool { return r.pushWaiters.Load() == n })
		for range n {
			r.TryPop()
		}
		for range n {
			<-done
		}
		if r.Len() != n {
			t.Errorf("Len() = %d, want %d", r.Len(), n)
		}
	})
}

// publishQuietly and releaseQuietly do what TryPush/TryPop do minus the
// wake-up signal, letting tests build the state that arises when several
// signals coalesce into one token. Single-threaded use only.
func publishQuietly[T any](r *Ring[T], v T) {
	pos := r.enq.Load()
	r.enq.Store(pos + 1)
	c := &r.cells[pos&r.mask]
	c.val = v
	c.seq.Store(pos + 1)
}

func releaseQuietly[T any](r *Ring[T]) {
	pos := r.deq.Load()
	r.deq.Store(pos + 1)
	c := &r.cells[pos&r.mask]
	var zero T
	c.val = zero
	c.seq.Store(pos + r.mask + 1)
}

// TestCoalescedTokenPassedOn covers the case the 1-slot notification
// channel creates: two elements become available but only one token is
// delivered. Without the woken goroutine passing the token on, the second
// sleeper would stay parked next to an element it could have taken.
func TestCoalescedTokenPassedOn(t *testing.T) {
	t.Run("pop", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := New[int](4)
		errc := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := r.Pop(ctx)
				errc <- err
			}()
		}
		waitFor(t, "consumers to park", func() bool { return r.popWaiters.Load() == 2 })
		time.Sleep(10 * time.Millisecond) // let both reach the select
		publishQuietly(r, 1)
		publishQuietly(r, 2)
		signal(r.notEmpty)
		// Well inside ctx's deadline: a sleeper that times out re-checks the
		// ring and would succeed anyway, hiding the missing wake-up.
		timeout := time.After(time.Second)
		for range 2 {
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Pop: %v", err)
				}
			case <-timeout:
				t.Fatal("second consumer never woken")
			}
		}
	})

	t.Run("push", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := New[int](2)
		r.TryPush(1)
		r.TryPush(2)
		errc := make(chan error, 2)
		for range 2 {
			go func() { errc <- r.Push(ctx, 3) }()
		}
		waitFor(t, "producers to park", func() bool { return r.pushWaiters.Load() == 2 })
		time.Sleep(10 * time.Millisecond)
		releaseQuietly(r)
		releaseQuietly(r)
		signal(r.notFull)
		// Well inside ctx's deadline: a sleeper that times out re-checks the
		// ring and would succeed anyway, hiding the missing wake-up.
		timeout := time.After(time.Second)
		for range 2 {
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Push: %v", err)
				}
			case <-timeout:
				t.Fatal("second producer never woken")
			}
		}
	})
}

// TestCloseWaitsForReservedSlot pins down the Close/push race: a producer
// that reserved a slot before Close but has not yet published it must still
// have its value delivered, so Pop may not report ErrClosed early.
func TestCloseWaitsForReservedSlot(t *testing.T) {
	r := New[int](4)
	pos := r.enq.Add(1) - 1 // reserved, not published
	r.Close()

	type result struct {
		v   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := r.Pop(context.Background())
		res <- result{v, err}
	}()
	select {
	case got := <-res:
		t.Fatalf("Pop returned %d, %v while a reserved slot was unpublished", got.v, got.err)
	case <-time.After(20 * time.Millisecond):
	}
	c := &r.cells[pos&r.mask]
	c.val = 42
	c.seq.Store(pos + 1)
	if got := <-res; got.err != nil || got.v != 42 {
		t.Fatalf("Pop() = %d, %v; want 42, nil", got.v, got.err)
	}
	if _, err := r.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop() = %v, want ErrClosed", err)
	}
}

func TestContextCancellation(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		// cancelAfterPark cancels explicitly once the goroutine is parked, so
		// the test covers waking a sleeper rather than the pre-park check.
		cancelAfterPark bool
		want            error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, true, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/Push", func(t *testing.T) {
			r := New[int](2)
			r.TryPush(1)
			r.TryPush(2)
			ctx, cancel := tt.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- r.Push(ctx, 3) }()
			if tt.cancelAfterPark {
				waitFor(t, "Push to park", func() bool { return r.pushWaiters.Load() == 1 })
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("Push = %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked Push ignored ctx")
			}
			if r.Len() != 2 {
				t.Errorf("Len() = %d after cancelled Push, want 2", r.Len())
			}
			if r.pushWaiters.Load() != 0 {
				t.Errorf("pushWaiters = %d after return, want 0", r.pushWaiters.Load())
			}
		})
		t.Run(tt.name+"/Pop", func(t *testing.T) {
			r := New[int](2)
			ctx, cancel := tt.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := r.Pop(ctx)
				errc <- err
			}()
			if tt.cancelAfterPark {
				waitFor(t, "Pop to park", func() bool { return r.popWaiters.Load() == 1 })
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("Pop = %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked Pop ignored ctx")
			}
			if r.popWaiters.Load() != 0 {
				t.Errorf("popWaiters = %d after return, want 0", r.popWaiters.Load())
			}
		})
	}
}

func TestStressMPMC(t *testing.T) {
	const (
		producers = 4
		consumers = 4
		total     = 200_000
		perProd   = total / producers
	)
	// A timeout rather than a hang if a wake-up is ever lost.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := New[int](64)
	var pwg, cwg sync.WaitGroup
	got := make([][]int, consumers)

	for p := range producers {
		pwg.Go(func() {
			for i := range perProd {
				if err := r.Push(ctx, p*perProd+i); err != nil {
					t.Errorf("producer %d: Push: %v", p, err)
					return
				}
			}
		})
	}
	for c := range consumers {
		cwg.Go(func() {
			local := make([]int, 0, total/consumers*2)
			for {
				v, err := r.Pop(ctx)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil {
					t.Errorf("consumer %d: Pop: %v", c, err)
					return
				}
				local = append(local, v)
			}
			got[c] = local
		})
	}
	pwg.Wait()
	r.Close()
	cwg.Wait()
	if t.Failed() {
		return
	}

	seen := make([]uint8, total)
	n := 0
	for c, vals := range got {
		// Not part of the MPMC contract, but it holds for this design (each
		// producer's pushes take increasing positions and each consumer pops
		// increasing positions), so a violation means the cursors are broken.
		last := [producers]int{-1, -1, -1, -1}
		for _, v := range vals {
			if v < 0 || v >= total {
				t.Fatalf("consumer %d got out-of-range value %d", c, v)
			}
			seen[v]++
			n++
			p := v / perProd
			if v <= last[p] {
				t.Fatalf("consumer %d saw producer %d's %d after %d", c, p, v, last[p])
			}
			last[p] = v
		}
	}
	if n != total {
		t.Errorf("received %d values, want %d", n, total)
	}
	for v, k := range seen {
		if k != 1 {
			t.Fatalf("value %d delivered %d times", v, k)
		}
	}
	if l := r.Len(); l != 0 {
		t.Errorf("Len() = %d after drain", l)
	}
}

// TestStressCloseRace checks that a Push which reports success is never lost
// when Close races with it: every accepted value must be drained.
func TestStressCloseRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 200 {
		r := New[int](4)
		var accepted, received [2]int
		var wg sync.WaitGroup
		for p := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					if err := r.Push(ctx, i); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Push: %v", err)
						}
						return
					}
					accepted[p]++
				}
			})
		}
		for c := range 2 {
			wg.Go(func() {
				for {
					if _, err := r.Pop(ctx); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Pop: %v", err)
						}
						return
					}
					received[c]++
				}
			})
		}
		for range round % 8 {
			runtime.Gosched()
		}
		r.Close()
		wg.Wait()
		if a, g := accepted[0]+accepted[1], received[0]+received[1]; a != g {
			t.Fatalf("round %d: %d pushes accepted, %d values received", round, a, g)
		}
	}
}
