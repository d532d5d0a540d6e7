package main

import (
	"errors"
	"sync"
)

// maxSeq bounds the seq values recorded, so that a stray huge attribute cannot make the sink
// allocate gigabytes: 64 Mi seqs is 64 MiB of counters, far beyond any test's load.
const maxSeq = 1 << 26

var errSeqRange = errors.New("seq out of range")

// seqSet counts how often each seq arrived. A byte per seq keeps it exact and simple at the
// sizes tests use (a million spans is a megabyte); the count saturates at 255 but the duplicate
// total is kept separately and never saturates.
type seqSet struct {
	mu         sync.Mutex
	counts     []uint8
	unique     int64
	duplicates int64
}

func (s *seqSet) add(seqs []int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for _, q := range seqs {
		if q < 0 || q >= maxSeq {
			err = errSeqRange
			continue
		}
		if int(q) >= len(s.counts) {
			n := max(2*len(s.counts), int(q)+1, 1024)
			grown := make([]uint8, min(n, maxSeq))
			copy(grown, s.counts)
			s.counts = grown
		}
		switch c := s.counts[q]; {
		case c == 0:
			s.unique++
		default:
			s.duplicates++
		}
		if s.counts[q] < 255 {
			s.counts[q]++
		}
	}
	return err
}

func (s *seqSet) totals() (unique, duplicates int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique, s.duplicates
}

// ranges returns the seqs seen as sorted, inclusive [lo, hi] runs: compact for the contiguous
// blocks a load generator sends.
func (s *seqSet) ranges() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := [][2]int64{}
	start := int64(-1)
	for i, c := range s.counts {
		switch {
		case c > 0 && start < 0:
			start = int64(i)
		case c == 0 && start >= 0:
			out = append(out, [2]int64{start, int64(i) - 1})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, [2]int64{start, int64(len(s.counts)) - 1})
	}
	return out
}

func (s *seqSet) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts, s.unique, s.duplicates = nil, 0, 0
}
