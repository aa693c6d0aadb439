package tracker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
)

// Contact retention. Without it the tracker would keep every contact in
// memory and in its store forever, and hand all of them to consolidation at
// every start. With it, a contact that has ended is kept for a grace period
// after its last event, so that redelivered and late events still find it
// and complete it, and is then retired: dropped from memory and from the
// store, which keeps a tombstone (task SID → ended and retired times)
// instead. An event for a task with a tombstone is a very late redelivery:
// it is counted and logged, and changes nothing (it must not make a fresh,
// partial contact that could start a stream or override what consolidation
// holds).
//
// A contact has ended when its task's end (completed, canceled, deleted) is
// known and no stream of it runs: the same end Contact.Status shows. A live
// call, however long, is never retired. A contact is retired only once the
// ContactSink has taken its final state (when there is a sink): the sink's
// nil answer to Contact is the acknowledgement. Acknowledgements are kept in
// memory only; after a restart, SetContactSink's hand-over of the restored
// contacts, or a retirement sweep, acknowledges them again.

// Default retention settings.
const (
	// DefaultTombstones keeps tombstones 7 days: as long as a Kinesis stream
	// with extended retention keeps records (168 h), longer than any
	// redelivery Event Streams (4 hours of webhook retries) or the
	// eventadapter's 48-hour duplicate window leads to.
	DefaultTombstones  = 7 * 24 * time.Hour
	DefaultRetireEvery = time.Minute
	// retireBatch bounds the contacts one sweep retires (one store
	// transaction, the Service's lock held): a first sweep over months of
	// contacts goes in steps.
	retireBatch = 5000
)

// RetentionConfig sets contact retention.
type RetentionConfig struct {
	// Retention is how long an ended contact stays after its last event; 0
	// keeps contacts forever. It must exceed the time within which an event
	// can be delivered again.
	Retention time.Duration
	// Tombstones is how long a retired contact's tombstone is kept
	// (default DefaultTombstones); at least Retention.
	Tombstones time.Duration
	// Every is how often RunRetention sweeps (default DefaultRetireEvery).
	Every time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the settings, with defaults applied.
func (c RetentionConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Retention < 0:
		return callrec.Errorf(callrec.EINVALID, "contact retention %v: negative", c.Retention)
	case c.Retention > 0 && c.Tombstones < c.Retention:
		return callrec.Errorf(callrec.EINVALID, "contact tombstones kept %v: shorter than the contact retention %v", c.Tombstones, c.Retention)
	}
	return nil
}

func (c RetentionConfig) withDefaults() RetentionConfig {
	if c.Tombstones == 0 {
		c.Tombstones = max(DefaultTombstones, c.Retention)
	}
	if c.Every <= 0 {
		c.Every = DefaultRetireEvery
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Tombstone is what remains of a retired contact.
type Tombstone struct {
	TaskSID   string
	EndedAt   time.Time // the task's end, from the events
	RetiredAt time.Time // by the tracker's clock
}

// RetentionStore is a ContactStore that can retire contacts
// (tracker/bolt.Store). Without one, contacts are kept forever.
type RetentionStore interface {
	// RetireContacts deletes the contacts' snapshots and saves their
	// tombstones, all or none.
	RetireContacts(ctx context.Context, ts []Tombstone) error
	// Tombstone returns a task's tombstone, if it has one.
	Tombstone(ctx context.Context, taskSID string) (Tombstone, bool, error)
	// PruneTombstones deletes the tombstones retired before before and
	// returns how many.
	PruneTombstones(ctx context.Context, before time.Time) (int, error)
}

// retention is the Service's retention state, guarded by Service.mu.
type retention struct {
	cfg   RetentionConfig
	store RetentionStore  // nil: the store cannot retire
	acked map[string]bool // task SID → the sink took the contact's current state

	contacts prometheus.Gauge
	ended    prometheus.Gauge
	waiting  prometheus.Gauge
	retired  prometheus.Counter
	late     prometheus.Counter
}

func newRetention(store ContactStore, reg prometheus.Registerer) *retention {
	rt := &retention{cfg: RetentionConfig{}.withDefaults(), acked: map[string]bool{},
		contacts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_tracker_contacts", Help: "Contacts the tracker holds in memory (live and ended ones in their retention)."}),
		ended:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_tracker_contacts_ended", Help: "Contacts in memory that have ended and wait for their retention to pass (updated by each retirement sweep)."}),
		waiting:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_tracker_contacts_unacknowledged", Help: "Ended contacts past their retention that stay because consolidation has not acknowledged their final state."}),
		retired:  prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_tracker_contacts_retired_total", Help: "Ended contacts retired (dropped from memory and store after their retention, a tombstone kept)."}),
		late:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_tracker_late_events_total", Help: "Events for contacts already retired (very late redeliveries), ignored."})}
	rt.store, _ = store.(RetentionStore)
	if reg != nil {
		reg.MustRegister(rt.contacts, rt.ended, rt.waiting, rt.retired, rt.late)
	}
	return rt
}

// SetRetention turns on contact retention (RetentionConfig.Retention > 0)
// with a store that can retire contacts. Call it before events flow; run
// RunRetention to retire.
func (s *Service) SetRetention(cfg RetentionConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.Retention > 0 && s.ret.store == nil {
		return callrec.Errorf(callrec.EINVALID, "contact retention: the tracker's store (%T) cannot retire contacts", s.store)
	}
	s.ret.cfg = cfg.withDefaults()
	return nil
}

// now is the retention clock.
func (s *Service) now() time.Time { return s.ret.cfg.Now() }

// ended reports whether the contact is over for good, and when its task
// ended (the EndedAt of its Contact).
func (r *record) ended() (time.Time, bool) {
	var at time.Time
	switch {
	case r.Completed.Set:
		at = r.Completed.At
	case r.Canceled.Set:
		at = r.Canceled.At
	case r.Deleted.Set:
		at = r.Deleted.At
	default:
		return time.Time{}, false
	}
	return at, r.Emit.Running == 0
}

// retired reports whether ev is for a retired contact, and logs and counts
// it if so. Call it with s.mu held, for an event the state would apply.
func (s *Service) retired(ctx context.Context, ev *callrec.CTIEvent) (bool, error) {
	if s.ret.store == nil || s.state.contacts[ev.TaskSID] != nil {
		return false, nil
	}
	t, ok, err := s.ret.store.Tombstone(ctx, ev.TaskSID)
	if err != nil {
		return false, fmt.Errorf("look up tombstone of %s: %w", ev.TaskSID, err)
	}
	if !ok {
		return false, nil
	}
	s.ret.late.Inc()
	s.log.Warn("event for a contact retired at "+t.RetiredAt.Format(time.RFC3339)+": ignored",
		"task_sid", ev.TaskSID, "event_id", ev.ID, "type", ev.Type, "event_time", ev.Time, "origin", ev.Origin,
		"ended_at", t.EndedAt, "retired_at", t.RetiredAt)
	return true, nil
}

// touched notes that an event changed (or repeated) a contact: its
// retention starts again, and the sink has yet to take its new state.
func (s *Service) touched(taskSID string) {
	if r := s.state.contacts[taskSID]; r != nil {
		r.Seen = s.now()
		delete(s.ret.acked, taskSID)
	}
	s.ret.contacts.Set(float64(len(s.state.contacts)))
}

// RunRetention retires contacts every RetentionConfig.Every until ctx is
// done (does nothing when retention is off). Failures are logged and tried
// again at the next sweep.
func (s *Service) RunRetention(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.ret.cfg
	s.mu.Unlock()
	if cfg.Retention <= 0 {
		return nil
	}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			n, err := s.RetireContacts(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Error("retire contacts", callrec.LogKeyErr, err)
			}
			if err != nil || n < retireBatch {
				break
			}
		}
	}
}

// RetireContacts retires the ended contacts whose last event is older
// than the retention (at most a batch of them), first handing any the sink
// has not acknowledged to it again, and prunes old tombstones. It returns
// how many it retired. A contact the sink refuses stays (and the sweep
// stops asking the sink until the next one).
func (s *Service) RetireContacts(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.ret
	if rt.cfg.Retention <= 0 {
		return 0, nil
	}
	now := s.now()
	var due []Tombstone
	var sinkErr error
	ended, waiting := 0, 0
	for sid, r := range s.state.contacts {
		endedAt, ok := r.ended()
		if !ok {
			continue
		}
		ended++
		if r.Seen.IsZero() { // saved before retention existed: its grace starts now
			r.Seen = now
		}
		if now.Sub(r.Seen) < rt.cfg.Retention || len(due) == retireBatch {
			continue
		}
		if s.sink != nil && !rt.acked[sid] {
			if sinkErr == nil {
				if sinkErr = s.sink.Contact(ctx, s.state.contactOf(r)); sinkErr == nil {
					rt.acked[sid] = true
				} else {
					sinkErr = fmt.Errorf("hand contact %s to consolidation: %w", sid, sinkErr)
				}
			}
			if !rt.acked[sid] {
				waiting++
				continue
			}
		}
		due = append(due, Tombstone{TaskSID: sid, EndedAt: endedAt, RetiredAt: now})
	}
	rt.waiting.Set(float64(waiting))
	if len(due) > 0 {
		if err := rt.store.RetireContacts(ctx, due); err != nil {
			rt.ended.Set(float64(ended))
			return 0, errors.Join(err, sinkErr)
		}
		for _, t := range due {
			s.state.Forget(t.TaskSID)
			delete(rt.acked, t.TaskSID)
		}
		rt.retired.Add(float64(len(due)))
		s.log.Info("contacts retired", "count", len(due), "retention", rt.cfg.Retention.String(), "kept", len(s.state.contacts))
	}
	rt.ended.Set(float64(ended - len(due)))
	rt.contacts.Set(float64(len(s.state.contacts)))
	pruned, err := rt.store.PruneTombstones(ctx, now.Add(-rt.cfg.Tombstones))
	if pruned > 0 {
		s.log.Info("tombstones pruned", "count", pruned, "older_than", rt.cfg.Tombstones.String())
	}
	if sinkErr != nil {
		sinkErr = fmt.Errorf("%d ended contacts wait for consolidation: %w", waiting, sinkErr)
	}
	return len(due), errors.Join(err, sinkErr)
}
