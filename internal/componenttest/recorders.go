package componenttest

import (
	"bytes"
	"sync"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
)

// Counters is a component.Counters that remembers the totals per outcome, for assertions.
type Counters struct {
	mu sync.Mutex
	n  map[component.Outcome]int
}

// Add records items with outcome o.
func (c *Counters) Add(o component.Outcome, _ batch.Signal, items int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[component.Outcome]int{}
	}
	c.n[o] += items
}

// Get returns the total recorded for o.
func (c *Counters) Get(o component.Outcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[o]
}

// LogBuffer is a goroutine-safe writer for capturing a component's logs.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
