package eventadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
)

// Skip reasons, the values of callrec_events_skipped_total's reason label.
const (
	SkipUnknownType   = "unknown_type"
	SkipNotTaskRouter = "not_taskrouter"
	SkipMalformed     = "malformed"
)

// Adapter turns source records into CTI events for an EventSink: it
// decodes them, drops events it has already handled (by CloudEvent id),
// skips and counts what it cannot use, and hands the rest to the sink in
// order. Its Handle method is a Handler.
type Adapter struct {
	sink   callrec.EventSink
	dedupe Deduper
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
}

var _ Handler = (*Adapter)(nil).Handle

// New returns an Adapter handing events to sink. Its metrics are
// registered with reg unless reg is nil; log may be nil.
func New(sink callrec.EventSink, dedupe Deduper, log *slog.Logger, reg prometheus.Registerer) *Adapter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Adapter{
		sink:   sink,
		dedupe: dedupe,
		log:    log.With(callrec.LogKeyComponent, "eventadapter"),
		m:      newMetrics(reg),
		now:    func() time.Time { return time.Now().UTC() },
	}
}

// Handle decodes recs (each one CloudEvent, or a JSON array of them),
// drops duplicates, and hands each new event to the sink in order. It
// asks the Deduper once per call and remembers the ids of the events the
// sink accepted. If the sink fails, Handle remembers the events handled
// before the failure and returns the error wrapped, so the source retries
// the batch and only the failed event and those after it are delivered
// again. Undecodable records and events are skipped and counted, never
// returned as errors: a retry would not fix them.
func (a *Adapter) Handle(ctx context.Context, recs []Record) error {
	received := a.now()
	events := a.decode(recs, received)
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = ev.ID
	}
	seen, err := a.dedupe.Seen(ctx, ids)
	if err != nil {
		return fmt.Errorf("dedupe: %w", err)
	}
	if len(seen) != len(ids) {
		return fmt.Errorf("dedupe: %d answers for %d ids", len(seen), len(ids))
	}
	inBatch := make(map[string]bool, len(events))
	handled := make([]string, 0, len(events))
	for i, ev := range events {
		if seen[i] || inBatch[ev.ID] {
			a.m.duplicates.Inc()
			continue
		}
		inBatch[ev.ID] = true
		if err := a.sink.HandleEvent(ctx, ev); err != nil {
			err = fmt.Errorf("handle event %s (%s) from %s: %w", ev.ID, ev.Type, ev.Origin, err)
			return errors.Join(err, a.remember(ctx, handled))
		}
		handled = append(handled, ev.ID)
		a.m.events.WithLabelValues(string(ev.Type)).Inc()
		if !ev.Time.IsZero() {
			a.m.lag.Observe(max(0, ev.Received.Sub(ev.Time).Seconds()))
		}
	}
	return a.remember(ctx, handled)
}

// decode turns records into the events worth handing on, skipping (with a
// log line and a count) what cannot be used.
func (a *Adapter) decode(recs []Record, received time.Time) []callrec.CTIEvent {
	var events []callrec.CTIEvent
	for _, rec := range recs {
		raws := []json.RawMessage{rec.Data}
		if isArray(rec.Data) {
			var err error
			if raws, err = DecodeBatch(rec.Data); err != nil {
				a.skip(rec.Origin, err)
				continue
			}
		}
		for _, raw := range raws {
			ev, err := Decode(raw)
			if err != nil {
				a.skip(rec.Origin, err)
				continue
			}
			ev.Origin = rec.Origin
			ev.Received = received
			events = append(events, ev)
		}
	}
	return events
}

// skip counts and logs an event that cannot be used. Decode's errors name
// the event id when known and never quote attribute values, so the log
// carries no phone numbers.
func (a *Adapter) skip(origin string, err error) {
	reason := SkipMalformed
	switch {
	case errors.Is(err, ErrNotTaskRouter):
		reason = SkipNotTaskRouter
	case errors.Is(err, ErrUnknownType):
		reason = SkipUnknownType
	}
	a.m.skipped.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if reason != SkipMalformed {
		level = slog.LevelInfo // the subscription has more types than callrec uses
	}
	a.log.Log(context.Background(), level, "skip event", "origin", origin,
		callrec.LogKeyReason, reason, callrec.LogKeyErr, err)
}

// remember records ids as handled. It runs even when ctx is done (the sink
// may have failed because of it), so handled events are not delivered again.
func (a *Adapter) remember(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := a.dedupe.Remember(context.WithoutCancel(ctx), ids, a.now()); err != nil {
		return fmt.Errorf("remember %d event ids: %w", len(ids), err)
	}
	return nil
}

func isArray(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '['
	}
	return false
}

type metrics struct {
	events     *prometheus.CounterVec
	duplicates prometheus.Counter
	skipped    *prometheus.CounterVec
	lag        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_events_total",
			Help: "TaskRouter events handed to the tracker, by type."}, []string{"type"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_events_duplicate_total",
			Help: "Events dropped because their id was already handled."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_events_skipped_total",
			Help: "Events skipped, by reason (unknown_type, not_taskrouter, malformed)."}, []string{"reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callrec_event_lag_seconds",
			Help:    "Time from an event's timestamp to its arrival here.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600}}),
	}
	for _, r := range []string{SkipUnknownType, SkipNotTaskRouter, SkipMalformed} {
		m.skipped.WithLabelValues(r) // export zeros
	}
	if reg != nil {
		reg.MustRegister(m.events, m.duplicates, m.skipped, m.lag)
	}
	return m
}

// NewMemoryDeduper returns a Deduper that keeps the last max ids in memory,
// forgetting the oldest first (by first insertion). It is for tests and
// the demo; it forgets everything on restart. max < 1 means 100,000.
func NewMemoryDeduper(max int) Deduper {
	if max < 1 {
		max = 100_000
	}
	return &memoryDeduper{max: max, ids: make(map[string]struct{})}
}

// memoryDeduper is a FIFO set of ids: order is a ring of the ids in
// insertion order.
type memoryDeduper struct {
	mu    sync.Mutex
	max   int
	ids   map[string]struct{}
	order []string
	next  int // where the next id goes in order, once it is full
}

func (d *memoryDeduper) Seen(_ context.Context, ids []string) ([]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make([]bool, len(ids))
	for i, id := range ids {
		_, seen[i] = d.ids[id]
	}
	return seen, nil
}

func (d *memoryDeduper) Remember(_ context.Context, ids []string, _ time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		if _, ok := d.ids[id]; ok {
			continue
		}
		d.ids[id] = struct{}{}
		if len(d.order) < d.max {
			d.order = append(d.order, id)
			continue
		}
		delete(d.ids, d.order[d.next])
		d.order[d.next] = id
		d.next = (d.next + 1) % d.max
	}
	return nil
}
