package ring

import (
	"context"
	"sync"
	"testing"
)

const benchCap = 64

// split spreads n items over k workers so the total is exactly n.
func split(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

func BenchmarkRing(b *testing.B) {
	ctx := context.Background()

	b.Run("TryPushPop", func(b *testing.B) {
		r := New[int](benchCap)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r.TryPush(i)
			r.TryPop()
		}
	})

	b.Run("1P1C", func(b *testing.B) {
		r := New[int](benchCap)
		b.ReportAllocs()
		b.ResetTimer()
		// Waiting for the producer keeps its exit inside the timed region
		// and leaves nothing running for goleak to flag.
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range b.N {
				if err := r.Push(ctx, i); err != nil {
					panic(err)
				}
			}
		})
		for range b.N {
			if _, err := r.Pop(ctx); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
	})

	b.Run("4P4C", func(b *testing.B) {
		const p, c = 4, 4
		r := New[int](benchCap)
		var wg sync.WaitGroup
		b.ReportAllocs()
		b.ResetTimer()
		for i := range p {
			wg.Go(func() {
				for j := range split(b.N, p, i) {
					if err := r.Push(ctx, j); err != nil {
						panic(err)
					}
				}
			})
		}
		for i := range c {
			wg.Go(func() {
				for range split(b.N, c, i) {
					if _, err := r.Pop(ctx); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
	})
}

func BenchmarkChannel(b *testing.B) {
	b.Run("TryPushPop", func(b *testing.B) {
		ch := make(chan int, benchCap)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			select {
			case ch <- i:
			default:
			}
			select {
			case <-ch:
			default:
			}
		}
	})

	b.Run("1P1C", func(b *testing.B) {
		ch := make(chan int, benchCap)
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range b.N {
				ch <- i
			}
		})
		for range b.N {
			<-ch
		}
		wg.Wait()
	})

	b.Run("4P4C", func(b *testing.B) {
		const p, c = 4, 4
		ch := make(chan int, benchCap)
		var wg sync.WaitGroup
		b.ReportAllocs()
		b.ResetTimer()
		for i := range p {
			wg.Go(func() {
				for j := range split(b.N, p, i) {
					ch <- j
				}
			})
		}
		for i := range c {
			wg.Go(func() {
				for range split(b.N, c, i) {
					<-ch
				}
			})
		}
		wg.Wait()
	})
}
