package promrw

// Builder re-batches series into 1.0 request bodies, one per shard, by appending their bytes:
// series go to shard Hash % n, so all samples of a series travel through one shard in the order
// they were added, which is how Prometheus keeps per-series order while sending in parallel.
// Resharding means flushing every shard and continuing with a Builder of the new size.
//
// A Builder is not safe for concurrent use. Bodies are plain byte slices it reuses after
// ResetShard, so a sender encodes (snappy copies) or copies a body before resetting its shard.
type Builder struct {
	shards  []shard
	scratch []byte // for hashing
}

type shard struct {
	body   []byte
	counts Counts
}

// NewBuilder returns a builder with n shards (at least one).
func NewBuilder(n int) *Builder {
	return &Builder{shards: make([]shard, max(n, 1))}
}

// Shards returns the number of shards.
func (b *Builder) Shards() int { return len(b.shards) }

// ShardOf returns the shard a series with this label hash goes to.
func (b *Builder) ShardOf(hash uint64) int {
	if len(b.shards) == 1 {
		return 0
	}
	return int(hash % uint64(len(b.shards)))
}

// Add appends a series scanned from a 1.0 request and returns its shard.
func (b *Builder) Add(s SeriesV1) int {
	i := b.Shard(s)
	b.AddTo(i, s)
	return i
}

// Shard returns the shard Add would put s in, so that a caller can flush that shard first when
// s would take it over a size limit.
func (b *Builder) Shard(s SeriesV1) int {
	if len(b.shards) == 1 {
		return 0
	}
	var h uint64
	h, b.scratch = hashLabelsInto(b.scratch, s.Labels())
	return b.ShardOf(h)
}

// AddTo appends s to shard i, which must be Shard(s): anything else breaks per-series order.
func (b *Builder) AddTo(i int, s SeriesV1) {
	sh := &b.shards[i]
	sh.body = AppendSeriesV1(sh.body, s.Raw)
	sh.counts.add(s.Samples, s.Histograms, s.Exemplars)
}

// AddV2 converts a series scanned from a 2.0 request to 1.0 (see AppendV2AsV1), appends it and
// returns its shard. The shard is the one the 1.0 form of the series would get.
func (b *Builder) AddV2(s SeriesV2) int {
	i := 0
	if len(b.shards) > 1 {
		i = b.ShardOf(s.Hash())
	}
	sh := &b.shards[i]
	sh.body = AppendV2AsV1(sh.body, s)
	sh.counts.add(s.Samples, s.Histograms, s.Exemplars)
	return i
}

// Request returns shard i's 1.0 request body (before snappy) and what it holds. The body is
// valid until the next Add, ResetShard or Reset.
func (b *Builder) Request(i int) ([]byte, Counts) {
	return b.shards[i].body, b.shards[i].counts
}

// Size returns the size of shard i's body in bytes, to flush on a byte limit.
func (b *Builder) Size(i int) int { return len(b.shards[i].body) }

// ResetShard empties shard i, keeping its buffer for the next batch.
func (b *Builder) ResetShard(i int) {
	b.shards[i].body = b.shards[i].body[:0]
	b.shards[i].counts = Counts{}
}

// Reset empties every shard.
func (b *Builder) Reset() {
	for i := range b.shards {
		b.ResetShard(i)
	}
}
