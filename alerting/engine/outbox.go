package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// The outbox keeps every notification that has not been delivered yet on disk, so that a
// crash (kill -9, OOM, power loss) between Alertmanager's attempts loses no page, firing or
// resolved. Each integration's notifier is wrapped: before an attempt, the notification (its
// group and alerts) is written to one file per integration and group, fsynced, and replaces
// the one before (the latest state of a group supersedes older ones); after a delivery, or a
// refusal that no retry can fix, the file is removed. What is left at start-up was not
// delivered: it is sent again (with backoff, until delivered or refused for good) while the
// pipeline resumes — unless all its alerts are still firing, which the rules restore from the
// store and the pipeline pages for again (replaying it as well would page twice).
type outbox struct {
	dir    string
	logger *slog.Logger

	mu sync.Mutex // serialises writes and removals of one key

	pending prometheus.GaugeFunc
	// By receiver and integration (e.g. "pager", "pagerduty").
	replayed, delivered, given, superseded *prometheus.CounterVec
	// attempts counts every attempt of a notification, at run time and replayed, by its
	// outcome: sent, retried (failed, to be tried again), dropped (refused for good).
	attempts *prometheus.CounterVec
}

type outboxEntry struct {
	Integration string         `json:"integration"` // receiver/name/index
	Receiver    string         `json:"receiver"`
	GroupKey    string         `json:"group_key"`
	GroupLabels model.LabelSet `json:"group_labels"`
	Reason      int            `json:"reason"` // notify.NotifyReason
	Alerts      []storedAlert  `json:"alerts"`
	Written     time.Time      `json:"written"`
}

type storedAlert struct {
	model.Alert
	UpdatedAt time.Time `json:"updated_at"`
	Timeout   bool      `json:"timeout"`
}

// outboxLabels label the outbox's counters, as Alertmanager's receiver_name and integration.
var outboxLabels = []string{"receiver_name", "integration"}

func newOutbox(dir string, logger *slog.Logger, reg prometheus.Registerer) (*outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("alertmanager outbox: %w", err)
	}
	o := &outbox{dir: dir, logger: logger}
	o.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_alerting_outbox_pending",
		Help: "Notifications written to the outbox and not delivered yet.",
	}, func() float64 { return float64(len(o.files())) })
	o.replayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_alerting_outbox_replayed_total",
		Help: "Notifications found undelivered in the outbox at start-up and sent again.",
	}, outboxLabels)
	o.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_alerting_outbox_delivered_total",
		Help: "Notifications from the outbox delivered after a restart.",
	}, outboxLabels)
	o.given = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_alerting_outbox_dropped_total",
		Help: "Notifications from the outbox dropped: refused for good by the receiver, or its integration no longer configured.",
	}, outboxLabels)
	o.superseded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_alerting_outbox_superseded_total",
		Help: "Notifications left in the outbox whose alerts were all still firing at start-up: not replayed, as the restored alerts page again through the pipeline.",
	}, outboxLabels)
	o.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_alerting_notification_attempts_total",
		Help: "Attempts to deliver a notification, per receiver and integration, by result: sent, retried (failed and tried again later: timeout, 5xx, connection refused), dropped (refused for good, such as a 4xx).",
	}, append(outboxLabels, "result"))
	if reg != nil {
		if err := registerAll(reg, o.pending, o.replayed, o.delivered, o.given, o.superseded, o.attempts); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (o *outbox) path(integration, groupKey string) string {
	h := sha256.Sum256([]byte(integration + "\x00" + groupKey))
	return filepath.Join(o.dir, hex.EncodeToString(h[:16])+".json")
}

func (o *outbox) files() []string {
	m, _ := filepath.Glob(filepath.Join(o.dir, "*.json"))
	return m
}

// write puts the entry on disk durably: a temporary file, fsynced, renamed over the old one,
// and the directory fsynced.
func (o *outbox) write(path string, e outboxEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(o.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (o *outbox) remove(path string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		o.logger.Warn("outbox: cannot remove a delivered notification", "error", err)
	}
}

// notifier wraps an integration so that its notifications go through the outbox.
func (o *outbox) notifier(receiver string, in notify.Integration) notify.Integration {
	key := integrationKey(receiver, in)
	return notify.NewIntegration(&outboxNotifier{o: o, key: key, receiver: receiver, in: in}, &in, in.Name(), in.Index(), receiver)
}

type outboxNotifier struct {
	o        *outbox
	key      string
	receiver string
	in       notify.Integration
}

// Notify writes the notification to the outbox, attempts it, and removes it unless it is to
// be retried. If the outbox cannot be written the attempt is made anyway (a page that may be
// lost beats no page), and the error is logged.
func (n *outboxNotifier) Notify(ctx context.Context, alerts ...*alert.Alert) notify.NotifyVerdict {
	gk, _ := notify.GroupKey(ctx)
	gl, _ := notify.GroupLabels(ctx)
	path := n.o.path(n.key, gk)
	e := outboxEntry{Integration: n.key, Receiver: n.receiver, GroupKey: gk, GroupLabels: gl, Written: time.Now(),
		Reason: int(notify.ReasonUnknown)}
	if r, ok := notify.NotificationReason(ctx); ok {
		e.Reason = int(r)
	}
	for _, a := range alerts {
		e.Alerts = append(e.Alerts, storedAlert{Alert: a.Alert, UpdatedAt: a.UpdatedAt, Timeout: a.Timeout})
	}
	if err := n.o.write(path, e); err != nil {
		n.o.logger.Error("outbox: cannot write a notification to disk; sending it without", "integration", n.key, "error", err)
	}
	v := n.in.Notify(ctx, alerts...)
	n.o.attempted(e, v)
	if v.Err() == nil || !v.ShouldRetry() {
		n.o.remove(path)
	}
	return v
}

// attempted counts one attempt of the entry's notification by its verdict.
func (o *outbox) attempted(e outboxEntry, v notify.NotifyVerdict) {
	result := "sent"
	switch {
	case v.Err() == nil:
	case v.ShouldRetry():
		result = "retried"
	default:
		result = "dropped"
	}
	o.attempts.WithLabelValues(e.Receiver, integrationName(e), result).Inc()
}

// replay sends what the outbox holds through the integrations of the running configuration,
// each with backoff until it is delivered, refused for good, or stop closes.
func (o *outbox) replay(integrations map[string]notify.Integration, stop <-chan struct{}, wg *sync.WaitGroup) {
	for _, path := range o.files() {
		b, err := os.ReadFile(path)
		var e outboxEntry
		if err == nil {
			err = json.Unmarshal(b, &e)
		}
		if err != nil {
			o.logger.Warn("outbox: unreadable notification dropped", "file", path, "error", err)
			o.given.WithLabelValues("", "").Inc()
			o.remove(path)
			continue
		}
		if stillFiring(e, time.Now()) {
			// Every alert in it is still firing and valid: the rules restore them from the
			// store and send them again, and the pipeline pages for them then. Replaying
			// this too would page twice.
			o.count(o.superseded, e)
			o.remove(path)
			continue
		}
		in, ok := integrations[e.Integration]
		if !ok {
			o.logger.Warn("outbox: notification for an integration no longer configured dropped", "integration", e.Integration)
			o.count(o.given, e)
			o.remove(path)
			continue
		}
		o.count(o.replayed, e)
		alerts := make([]*alert.Alert, 0, len(e.Alerts))
		for _, a := range e.Alerts {
			alerts = append(alerts, alert.New(a.Alert, a.UpdatedAt, a.Timeout))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.resend(path, e, in, alerts, stop)
		}()
	}
}

func (o *outbox) resend(path string, e outboxEntry, in notify.Integration, alerts []*alert.Alert, stop <-chan struct{}) {
	delay := time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ctx = notify.WithGroupKey(ctx, e.GroupKey)
		ctx = notify.WithReceiverName(ctx, e.Receiver)
		ctx = notify.WithGroupLabels(ctx, e.GroupLabels)
		ctx = notify.WithNow(ctx, time.Now())
		ctx = notify.WithNotificationReason(ctx, notify.NotifyReason(e.Reason))
		v := in.Notify(ctx, alerts...)
		cancel()
		o.attempted(e, v)
		switch {
		case v.Err() == nil:
			o.count(o.delivered, e)
			o.remove(path)
			o.logger.Info("outbox: notification delivered after a restart", "integration", e.Integration, "alerts", len(alerts))
			return
		case !v.ShouldRetry():
			o.count(o.given, e)
			o.remove(path)
			o.logger.Error("outbox: notification refused for good", "integration", e.Integration, "error", v.Err())
			return
		}
		o.logger.Warn("outbox: notification not delivered yet; retrying", "integration", e.Integration, "in", delay, "error", v.Err())
		select {
		case <-stop:
			return // still on disk for the next start
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

// count adds one to c for the entry's receiver and integration.
func (o *outbox) count(c *prometheus.CounterVec, e outboxEntry) {
	c.WithLabelValues(e.Receiver, integrationName(e)).Inc()
}

// integrationName is the integration's type (webhook, slack, …) from its outbox key.
func integrationName(e outboxEntry) string {
	if parts := strings.Split(e.Integration, "/"); len(parts) == 3 {
		return parts[1]
	}
	return e.Integration
}

// stillFiring reports whether every alert of the entry is firing and not yet past its EndsAt
// (Prometheus sets a firing alert's EndsAt a few resend intervals ahead).
func stillFiring(e outboxEntry, now time.Time) bool {
	for _, a := range e.Alerts {
		if !a.EndsAt.IsZero() && !a.EndsAt.After(now) {
			return false
		}
	}
	return len(e.Alerts) > 0
}

// integrationKey is the key of an integration in the outbox.
func integrationKey(receiver string, in notify.Integration) string {
	return strings.Join([]string{receiver, in.Name(), fmt.Sprint(in.Index())}, "/")
}
