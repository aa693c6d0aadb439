package tracker_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/twilio"
	"callrec/tracker"
	"callrec/tracker/bolt"
	"callrec/tracker/streams"
)

// orders records what the Service submits, dropping repeated keys as the
// Stream Manager does.
type orders struct {
	mu   sync.Mutex
	seen map[string]bool
	got  []streams.Order
}

func (o *orders) Submit(_ context.Context, ord streams.Order) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	if o.seen[ord.Key] {
		return false, nil
	}
	o.seen[ord.Key] = true
	o.got = append(o.got, ord)
	return true, nil
}

func newService(t *testing.T, path string, o *orders, alarm tracker.AlarmConfig) (*tracker.Service, *bolt.Store) {
	t.Helper()
	return newServiceReg(t, path, o, alarm, nil)
}

func newServiceReg(t *testing.T, path string, o *orders, alarm tracker.AlarmConfig, reg prometheus.Registerer) (*tracker.Service, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := tracker.NewService(context.Background(), defaultRules, alarm, tracker.HoldConfig{}, o, st, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

// TestServiceCarriesOnAfterRestart: the Service turns decisions into
// orders tagged with task, reservation and agent; a Service restarted on
// the same store carries on: the redelivered accept orders nothing new,
// the wrap-up orders the stop.
func TestServiceCarriesOnAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	evs := answeredEvents().events
	var accepted int
	for i, ev := range evs {
		if ev.Type == callrec.EventReservationAccepted {
			accepted = i
		}
	}
	o := &orders{}
	svc, st := newService(t, path, o, tracker.AlarmConfig{})
	ctx := context.Background()
	for _, ev := range evs[:accepted+1] {
		if err := svc.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(o.got) != 1 || o.got[0].Kind != streams.Start || o.got[0].CallSID != customerLeg {
		t.Fatalf("orders after accept: %+v", o.got)
	}
	params := map[string]string{}
	for _, p := range o.got[0].Params {
		params[p.Name] = p.Value
	}
	if params["task_sid"] != taskSID || params["reservation_sid"] != resA || params["agent"] != alice.name {
		t.Errorf("start order parameters %v", params)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	svc, st = newService(t, path, o, tracker.AlarmConfig{})
	defer st.Close()
	if c, ok := svc.Contact(taskSID); !ok || c.Status != callrec.ContactActive {
		t.Fatalf("restored contact %+v, %v", c, ok)
	}
	for _, ev := range evs { // everything, the accept again included
		if err := svc.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(o.got) != 2 || o.got[1].Kind != streams.Stop || o.got[1].Name != o.got[0].Name {
		t.Fatalf("orders after the restart: %+v", o.got)
	}
}

// TestLongCallAlarm: raised once per call past the threshold, not before,
// and cleared when the call ends.
func TestLongCallAlarm(t *testing.T) {
	evs := answeredEvents().events
	o := &orders{}
	reg := prometheus.NewRegistry()
	svc, st := newServiceReg(t, filepath.Join(t.TempDir(), "tracker.db"), o, tracker.AlarmConfig{LongCall: time.Hour}, reg)
	defer st.Close()
	var answeredAt time.Time
	for _, ev := range evs {
		if ev.Type == callrec.EventReservationWrapup {
			break
		}
		if ev.Type == callrec.EventReservationAccepted {
			answeredAt = ev.Time
		}
		if err := svc.HandleEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.CheckAlarms(answeredAt.Add(59 * time.Minute)); n != 0 {
		t.Errorf("%d long calls at 59 minutes", n)
	}
	for range 2 {
		if n := svc.CheckAlarms(answeredAt.Add(61 * time.Minute)); n != 1 {
			t.Errorf("%d long calls at 61 minutes, want 1", n)
		}
	}
	if got := counter(t, reg, "callrec_long_call_alarms_total"); got != 1 {
		t.Errorf("%v long-call alarms raised for one call checked twice, want 1", got)
	}
	for _, ev := range evs {
		if err := svc.HandleEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.CheckAlarms(answeredAt.Add(3 * time.Hour)); n != 0 {
		t.Errorf("%d long calls after the call ended", n)
	}
}

// participants is a conference whose customer can be put on hold.
type participants struct {
	mu   sync.Mutex
	hold bool
}

func (p *participants) Participants(context.Context, string) ([]twilio.Participant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return []twilio.Participant{{CallSID: agentLeg, Label: "worker", Status: "connected"},
		{CallSID: customerLeg, Label: "customer", Status: "connected", Hold: p.hold}}, nil
}

// TestLongHoldAlarm: hold is polled from the conference; a hold longer
// than the threshold raises the alarm; taking the customer off hold resets.
func TestLongHoldAlarm(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	svc, err := tracker.NewService(context.Background(), defaultRules, tracker.AlarmConfig{},
		tracker.HoldConfig{LongHold: 10 * time.Minute}, &orders{}, st, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range answeredEvents().events {
		if ev.Type == callrec.EventReservationWrapup {
			break
		}
		if err := svc.HandleEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	conf := &participants{}
	t0 := time.Now()
	check := func(at time.Duration, wantHold, wantLong int) {
		t.Helper()
		if h, l := svc.CheckHolds(ctx, conf, t0.Add(at)); h != wantHold || l != wantLong {
			t.Errorf("at %v: %d on hold, %d too long; want %d, %d", at, h, l, wantHold, wantLong)
		}
	}
	check(0, 0, 0)
	conf.hold = true
	check(time.Minute, 1, 0)
	check(10*time.Minute, 1, 0)
	check(11*time.Minute, 1, 1)
	conf.hold = false
	check(12*time.Minute, 0, 0)
	conf.hold = true
	check(13*time.Minute, 1, 0) // a new hold starts counting afresh
	check(22*time.Minute, 1, 0)
	check(23*time.Minute, 1, 1)
	check(24*time.Minute, 1, 1)
	if got := counter(t, reg, "callrec_long_hold_alarms_total"); got != 2 {
		t.Errorf("%v long-hold alarms for two long holds, want 2", got)
	}
}

// counter reads a counter from a registry.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// contactSink records the contacts handed to consolidation; fail makes it
// refuse them.
type contactSink struct {
	got  []callrec.Contact
	fail error
}

func (c *contactSink) Contact(_ context.Context, ct callrec.Contact) error {
	if c.fail != nil {
		return c.fail
	}
	c.got = append(c.got, ct)
	return nil
}

// TestContactSink: every event hands the changed contact to the sink; a
// sink failure fails the event (so it is delivered again); a sink set on a
// restarted service first gets every restored contact.
func TestContactSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	evs := answeredEvents().events
	ctx := context.Background()
	svc, st := newService(t, path, &orders{}, tracker.AlarmConfig{})
	sink := &contactSink{}
	if err := svc.SetContactSink(ctx, sink); err != nil || len(sink.got) != 0 {
		t.Fatalf("empty service: %v, %d contacts", err, len(sink.got))
	}
	for _, ev := range evs[:2] {
		if err := svc.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.got) != 2 || sink.got[1].TaskSID != taskSID {
		t.Fatalf("sink got %d contacts: %+v", len(sink.got), sink.got)
	}
	sink.fail = errors.New("consolidation down")
	if err := svc.HandleEvent(ctx, evs[2]); !errors.Is(err, sink.fail) {
		t.Fatalf("event with the sink down: %v", err)
	}
	sink.fail = nil
	for _, ev := range evs[2:] {
		if err := svc.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	last := sink.got[len(sink.got)-1]
	if want, _ := svc.Contact(taskSID); last.Status != want.Status || last.Status != callrec.ContactEnded {
		t.Errorf("last contact handed over: %s, service has %s", last.Status, want.Status)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	svc, st = newService(t, path, &orders{}, tracker.AlarmConfig{})
	defer st.Close()
	again := &contactSink{}
	if err := svc.SetContactSink(ctx, again); err != nil {
		t.Fatal(err)
	}
	if len(again.got) != 1 || again.got[0].TaskSID != taskSID || again.got[0].Status != callrec.ContactEnded {
		t.Errorf("restored contacts handed over: %+v", again.got)
	}
}
