package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/twilio"
	"callrec/tracker/streams"
)

// ContactStore persists contact snapshots (tracker/bolt.Store).
type ContactStore interface {
	PutContact(ctx context.Context, taskSID string, snapshot []byte) error
	Contacts(ctx context.Context) (map[string][]byte, error)
}

// ContactSink receives every contact after an event changed it
// (consolidation). It must be idempotent: a redelivered event hands over the
// same contact again.
type ContactSink interface {
	Contact(ctx context.Context, c callrec.Contact) error
}

// Orderer takes stream orders (the Stream Manager).
type Orderer interface {
	Submit(ctx context.Context, o streams.Order) (bool, error)
}

// Service is the tracker as an event sink: it applies each CTI event to the
// state, hands the resulting decisions to the Stream Manager, and persists
// the contact, so a restarted tracker carries on.
type Service struct {
	orders Orderer
	store  ContactStore
	sink   ContactSink // nil: none
	log    *slog.Logger
	events *prometheus.CounterVec

	mu     sync.Mutex
	state  *State
	ret    *retention
	alarms *alarms    // used by the alarm loop only
	holds  *holdWatch // used by the hold watch loop only
}

var _ callrec.EventSink = (*Service)(nil)

// NewService restores the saved contacts and returns the Service. It
// keeps contacts forever unless SetRetention says otherwise.
func NewService(ctx context.Context, rules Rules, alarm AlarmConfig, hold HoldConfig, orders Orderer, store ContactStore, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{orders: orders, store: store, log: log.With(callrec.LogKeyComponent, "tracker"), state: NewState(rules), ret: newRetention(store, reg), alarms: newAlarms(alarm, reg), holds: newHoldWatch(hold, reg),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_tracker_events_total", Help: "CTI events applied, by type."}, []string{"type"})}
	if reg != nil {
		reg.MustRegister(s.events)
	}
	saved, err := store.Contacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load contacts: %w", err)
	}
	snap := Snapshot{Version: SnapshotVersion, Contacts: make(map[string]json.RawMessage, len(saved))}
	for sid, b := range saved {
		snap.Contacts[sid] = b
	}
	if err := s.state.Restore(snap); err != nil {
		return nil, err
	}
	if len(saved) > 0 {
		s.log.Info("tracker state restored", "contacts", len(saved))
	}
	s.ret.contacts.Set(float64(len(s.state.contacts)))
	return s, nil
}

// HandleEvent implements callrec.EventSink. The decisions are submitted
// before the contact is saved: a crash in between makes the redelivered
// event decide again, and the Stream Manager drops the repeated orders by
// key; the other way round, a decision could be lost. An event for a
// retired contact is ignored (see retention.go).
func (s *Service) HandleEvent(ctx context.Context, ev callrec.CTIEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if applies(&ev) {
		if late, err := s.retired(ctx, &ev); late || err != nil {
			return err
		}
	}
	ds := Effective(s.state.Apply(ev))
	s.touched(ev.TaskSID)
	s.events.WithLabelValues(string(ev.Type)).Inc()
	for _, d := range ds {
		o := order(d, s.state, ev)
		if _, err := s.orders.Submit(ctx, o); err != nil {
			return fmt.Errorf("submit %s: %w", d.Key, err)
		}
		s.log.Info("stream decision", "kind", d.Kind, "name", d.Name, callrec.LogKeyReason, d.Reason,
			"task_sid", d.TaskSID, "agent", d.AgentExtension)
	}
	if ev.TaskSID == "" {
		return nil
	}
	snap, err := s.state.Snapshot(ev.TaskSID)
	if err != nil {
		return err
	}
	if b, ok := snap.Contacts[ev.TaskSID]; ok {
		if err := s.store.PutContact(ctx, ev.TaskSID, b); err != nil {
			return fmt.Errorf("save contact %s: %w", ev.TaskSID, err)
		}
	}
	if s.sink != nil {
		if c, ok := s.state.Contact(ev.TaskSID); ok {
			// A failure makes the event come again: the sink sees the
			// contact at least once.
			if err := s.sink.Contact(ctx, c); err != nil {
				return fmt.Errorf("hand contact %s to consolidation: %w", ev.TaskSID, err)
			}
			s.ret.acked[ev.TaskSID] = true
		}
	}
	return nil
}

// SetContactSink makes the service hand every changed contact to sink, and
// hands it every contact restored from the store now (so a sink that missed
// updates while the tracker was down catches up): with retention, only the
// contacts still retained, since the retired ones were acknowledged before
// they were retired. Call it before events flow. On error the contacts not
// handed over go with their next event or the next retirement sweep.
func (s *Service) SetContactSink(ctx context.Context, sink ContactSink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sink = sink
	clear(s.ret.acked) // what another sink took does not count
	for _, c := range s.state.Contacts() {
		if err := sink.Contact(ctx, c); err != nil {
			return fmt.Errorf("hand contact %s to consolidation: %w", c.TaskSID, err)
		}
		s.ret.acked[c.TaskSID] = true
	}
	return nil
}

// Contact returns a contact's current state.
func (s *Service) Contact(taskSID string) (callrec.Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Contact(taskSID)
}

// order turns a decision into a Stream Manager order. The stream's custom
// parameters tie the recording to the task, reservation and agent.
func order(d Decision, st *State, ev callrec.CTIEvent) streams.Order {
	o := streams.Order{TaskSID: d.TaskSID, CallSID: d.CallSID, ConferenceSID: d.ConferenceSID, Name: d.Name, Since: ev.Received}
	if d.Kind == StopStream {
		o.Kind, o.Key = streams.Stop, streams.StopKey(d.Name)
		return o
	}
	o.Kind, o.Key = streams.Start, streams.StartKey(d.Name)
	team := ""
	if c, ok := st.Contact(d.TaskSID); ok {
		for label, call := range c.Participants {
			if label != "customer" {
				o.AgentLegs = append(o.AgentLegs, call)
			}
		}
		for _, x := range c.Connections {
			if x.ReservationSID == d.ReservationSID {
				team = x.Team
			}
		}
	}
	o.Params = []twilio.Param{{Name: "task_sid", Value: d.TaskSID}, {Name: "reservation_sid", Value: d.ReservationSID},
		{Name: "worker_sid", Value: d.WorkerSID}, {Name: "agent", Value: d.AgentExtension},
		{Name: "stream_name", Value: d.Name}, {Name: "leg", Value: "customer"}}
	if team != "" {
		o.Params = append(o.Params, twilio.Param{Name: "team", Value: team})
	}
	return o
}
