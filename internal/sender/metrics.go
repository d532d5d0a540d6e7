package sender

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/internal/queue"
)

// metrics are the sender's own, beside the framework's per-component item counters. They are
// registered at Start rather than New, and removed by Shutdown, so that an exporter can be
// created, stopped and created again against one registry.
type metrics struct {
	retries         *prometheus.CounterVec
	sendFailures    *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	enqueueFailures *prometheus.CounterVec
	registered      []prometheus.Collector
}

func newMetrics() *metrics {
	m := &metrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_exporter_retries_total",
			Help: "Send attempts repeated after a retryable failure.",
		}, []string{"signal"}),
		sendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_exporter_send_failures_total",
			Help: "Failed send attempts, by reason: retryable, permanent, timeout (the per-attempt timeout passed), partial (the backend rejected some items).",
		}, []string{"signal", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_exporter_dropped_items_total",
			Help: "Items the exporter lost for good, by reason: queue_full, drop_oldest, permanent, rejected, retries_exhausted, shutdown, unmergeable, invalid.",
		}, []string{"signal", "reason"}),
		enqueueFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_exporter_enqueue_failures_total",
			Help: "Batches the sending queue did not take, by reason: full, closed, disk (the persistent queue could not write), invalid (it cannot hold the batch).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"full", "closed", "disk", "invalid"} {
		m.enqueueFailures.WithLabelValues(r) // present at 0, for alert expressions
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer, q queue.Queue, sizer queue.Sizer, persistent bool) error {
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{m.retries, m.sendFailures, m.dropped}
	if q != nil {
		cs = append(cs, m.enqueueFailures, newQueueCollector(q, sizer, persistent))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			m.unregister(reg)
			return fmt.Errorf("sender: register metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.registered {
		reg.Unregister(c)
	}
	m.registered = nil
}

// queueCollector reads the queue's Stats once per scrape for all the queue gauges.
type queueCollector struct {
	q          queue.Queue
	sizer      queue.Sizer
	persistent bool

	size, items, bytes, capacity, capacityBytes, oldest, fillRatio *prometheus.Desc
	segments, walBytes, corruptions                                *prometheus.Desc
}

func newQueueCollector(q queue.Queue, sizer queue.Sizer, persistent bool) *queueCollector {
	d := func(name, help string, constLabels prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc(name, help, nil, constLabels)
	}
	return &queueCollector{
		q:          q,
		sizer:      sizer,
		persistent: persistent,
		size:       d("vigil_exporter_queue_size", "Batches in the sending queue, waiting or being sent.", nil),
		items:      d("vigil_exporter_queue_items", "Items (spans, data points, log records) in the sending queue.", nil),
		bytes:      d("vigil_exporter_queue_bytes", "Encoded bytes held by the sending queue (persistent: on disk).", nil),
		capacity: d("vigil_exporter_queue_capacity", "Capacity of the sending queue, in the unit of its sizer label.",
			prometheus.Labels{"sizer": string(sizer)}),
		fillRatio:     d("vigil_exporter_queue_fill_ratio", "How full the sending queue is, 0 to 1: what it holds in the unit of its sizer over its capacity, or its bytes over the byte cap if that is fuller.", nil),
		capacityBytes: d("vigil_exporter_queue_capacity_bytes", "Byte cap of the persistent queue (max_size_mib); 0: none.", nil),
		oldest:        d("vigil_exporter_queue_oldest_item_age_seconds", "Age of the oldest batch in the sending queue; 0 when empty.", nil),
		segments:      d("vigil_exporter_wal_segments", "Segment files of the persistent queue's write-ahead log.", nil),
		walBytes:      d("vigil_exporter_wal_bytes", "Bytes of the persistent queue's write-ahead log on disk, including records not yet truncated.", nil),
		corruptions:   d("vigil_exporter_wal_corruptions_total", "Records of the write-ahead log skipped as corrupt since start.", nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.items
	ch <- c.bytes
	ch <- c.capacity
	ch <- c.fillRatio
	ch <- c.oldest
	if c.persistent {
		ch <- c.capacityBytes
		ch <- c.segments
		ch <- c.walBytes
		ch <- c.corruptions
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.q.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(c.size, float64(st.Batches))
	g(c.items, float64(st.Items))
	g(c.bytes, float64(st.Bytes))
	g(c.capacity, float64(st.Capacity))
	g(c.fillRatio, fill(st, c.sizer))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = max(time.Since(st.Oldest).Seconds(), 0)
	}
	g(c.oldest, age)
	if c.persistent {
		g(c.capacityBytes, float64(st.CapacityBytes))
		g(c.segments, float64(st.Segments))
		g(c.walBytes, float64(st.Bytes))
		ch <- prometheus.MustNewConstMetric(c.corruptions, prometheus.CounterValue, float64(st.Corruptions))
	}
}
