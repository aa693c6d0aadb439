package tracker_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/tracker"
	"callrec/tracker/bolt"
	"callrec/tracker/streams"
)

const (
	retention  = 24 * time.Hour
	tombstones = 72 * time.Hour
)

// fakeClock is the retention clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// submits counts every order submitted, repeated keys included (unlike
// orders, which drops them as the Stream Manager does, and would hide a
// resurrected contact's repeated start).
type submits struct {
	mu  sync.Mutex
	got []streams.Order
}

func (o *submits) Submit(_ context.Context, ord streams.Order) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, ord)
	return true, nil
}

func (o *submits) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.got)
}

// retEnv is a Service with retention on a bbolt store, a fake clock, a
// sink and its own metrics.
type retEnv struct {
	t      *testing.T
	clock  *fakeClock
	orders *submits
	sink   *contactSink
	reg    *prometheus.Registry
	svc    *tracker.Service
	st     *bolt.Store
}

// openRetEnv opens a Service on the store at path. A sink that fails makes
// the hand-over of the restored contacts fail, as consolidation being down
// at start does.
func openRetEnv(t *testing.T, path string, clock *fakeClock, sink *contactSink) *retEnv {
	t.Helper()
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &retEnv{t: t, clock: clock, orders: &submits{}, sink: sink, reg: prometheus.NewRegistry(), st: st}
	e.svc, err = tracker.NewService(context.Background(), defaultRules, tracker.AlarmConfig{}, tracker.HoldConfig{}, e.orders, st, nil, e.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetRetention(tracker.RetentionConfig{Retention: retention, Tombstones: tombstones, Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetContactSink(context.Background(), sink); err != nil && sink.fail == nil {
		t.Fatal(err)
	}
	return e
}

func (e *retEnv) close() {
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *retEnv) handle(evs ...callrec.CTIEvent) {
	e.t.Helper()
	for _, ev := range evs {
		if err := e.svc.HandleEvent(context.Background(), ev); err != nil {
			e.t.Fatalf("event %s: %v", ev.Type, err)
		}
	}
}

// retire sweeps and checks how many contacts went.
func (e *retEnv) retire(want int) {
	e.t.Helper()
	n, err := e.svc.RetireContacts(context.Background())
	if err != nil {
		e.t.Fatalf("at +%v: retire: %v", e.clock.Now().Sub(t0), err)
	}
	if n != want {
		e.t.Fatalf("at +%v: %d contacts retired, want %d", e.clock.Now().Sub(t0), n, want)
	}
}

// stored lists the task SIDs with a contact in the store.
func (e *retEnv) stored() []string {
	e.t.Helper()
	m, err := e.st.Contacts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for sid := range m {
		out = append(out, sid)
	}
	slices.Sort(out)
	return out
}

// has checks whether the Service and the store hold the task's contact.
func (e *retEnv) has(task string, want bool) {
	e.t.Helper()
	_, inMem := e.svc.Contact(task)
	inStore := slices.Contains(e.stored(), task)
	if inMem != want || inStore != want {
		e.t.Fatalf("at +%v: task %s in memory %v, in the store %v; want %v", e.clock.Now().Sub(t0), task, inMem, inStore, want)
	}
}

func (e *retEnv) metric(name string) float64 {
	e.t.Helper()
	return callrectest.Metric(e.t, e.reg, name, nil)
}

func newClock() *fakeClock { return &fakeClock{t: t0.Add(time.Hour)} }

// liveEvents is a call still going on: answered, the stream running.
func liveEvents(task string) []callrec.CTIEvent {
	c := inbound()
	c.task = task
	return c.taskEv(taskCreated, 0).res(resCreated, alice, resA, 1).res(resAccepted, alice, resA, 8).conference(9, both).events
}

// TestRetentionRetiresEndedContact: an ended contact stays, in memory and
// in the store, for the retention after its last event (a redelivered event
// starts it again), and is then retired: gone from both, a tombstone left.
func TestRetentionRetiresEndedContact(t *testing.T) {
	clock := newClock()
	e := openRetEnv(t, filepath.Join(t.TempDir(), "tracker.db"), clock, &contactSink{})
	evs := answeredEvents().events
	e.handle(evs...)
	e.retire(0)
	e.has(taskSID, true)

	clock.Add(20 * time.Hour)
	e.handle(evs[2]) // a redelivered accept: nothing new, but the clock starts again
	clock.Add(retention - time.Second)
	e.retire(0)
	e.has(taskSID, true)
	if got := e.metric("callrec_tracker_contacts_ended"); got != 1 {
		t.Errorf("callrec_tracker_contacts_ended = %v during the retention, want 1", got)
	}

	clock.Add(time.Second)
	e.retire(1)
	e.has(taskSID, false)
	ts, ok, err := e.st.Tombstone(context.Background(), taskSID)
	if err != nil || !ok {
		t.Fatalf("tombstone: %v, %v", ok, err)
	}
	if want := (tracker.Tombstone{TaskSID: taskSID, EndedAt: at(150), RetiredAt: clock.Now()}); !ts.EndedAt.Equal(want.EndedAt) || !ts.RetiredAt.Equal(want.RetiredAt) {
		t.Errorf("tombstone %+v, want %+v", ts, want)
	}
	for name, want := range map[string]float64{"callrec_tracker_contacts": 0, "callrec_tracker_contacts_ended": 0,
		"callrec_tracker_contacts_retired_total": 1, "callrec_tracker_late_events_total": 0} {
		if got := e.metric(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n := e.orders.count(); n != 2 {
		t.Errorf("%d orders, want the start and the stop", n)
	}
}

// TestRetentionKeepsLiveCall: a call still going on is kept however long
// it lasts; an ended one next to it goes.
func TestRetentionKeepsLiveCall(t *testing.T) {
	clock := newClock()
	e := openRetEnv(t, filepath.Join(t.TempDir(), "tracker.db"), clock, &contactSink{})
	const live = "WT00000000000000000000000000000001"
	e.handle(liveEvents(live)...)
	e.handle(answeredEvents().events...)
	if got := e.metric("callrec_tracker_contacts"); got != 2 {
		t.Errorf("callrec_tracker_contacts = %v, want 2", got)
	}
	clock.Add(30 * 24 * time.Hour)
	e.retire(1)
	e.has(taskSID, false)
	e.has(live, true)
	if c, _ := e.svc.Contact(live); c.Status != callrec.ContactActive {
		t.Errorf("live call is %s", c.Status)
	}
	if got := e.metric("callrec_tracker_contacts"); got != 1 {
		t.Errorf("callrec_tracker_contacts = %v, want 1", got)
	}

	// Once it ends, it goes after its own retention.
	c := inbound()
	c.task = live
	end := c.taskEv(taskCreated, 0).res(resCreated, alice, resA, 1).res(resAccepted, alice, resA, 8).
		res(resWrapup, alice, resA, 7200).taskEv(taskWrapup, 7200).taskEv(taskCompleted, 7230).events
	e.handle(end[3:]...)
	clock.Add(retention - time.Minute)
	e.retire(0)
	clock.Add(time.Minute)
	e.retire(1)
	e.has(live, false)
}

// TestRetentionLateEventAfterRetirement: every event of a retired contact,
// redelivered in any order, is ignored and counted: no order, no contact in
// memory or store, nothing for consolidation.
func TestRetentionLateEventAfterRetirement(t *testing.T) {
	evs := answeredEvents().events
	// The control: on its own, the late accept would start a stream.
	if ds := tracker.NewState(defaultRules).Apply(evs[2]); len(ds) == 0 || ds[0].Kind != tracker.StartStream {
		t.Fatalf("control: a lone accept decides %+v", ds)
	}
	clock := newClock()
	sink := &contactSink{}
	e := openRetEnv(t, filepath.Join(t.TempDir(), "tracker.db"), clock, sink)
	e.handle(evs...)
	clock.Add(retention)
	e.retire(1)
	orders, handed := e.orders.count(), len(sink.got)

	clock.Add(time.Hour)
	late := slices.Clone(evs)
	slices.Reverse(late)
	e.handle(evs[2]) // the accept first
	e.handle(late...)
	if n := e.orders.count() - orders; n != 0 {
		t.Errorf("late events submitted %d orders: %+v", n, e.orders.got[orders:])
	}
	e.has(taskSID, false)
	if n := len(sink.got) - handed; n != 0 {
		t.Errorf("late events handed %d contacts to consolidation", n)
	}
	if got, want := e.metric("callrec_tracker_late_events_total"), float64(len(evs)+1); got != want {
		t.Errorf("callrec_tracker_late_events_total = %v, want %v", got, want)
	}
	if got := e.metric("callrec_tracker_contacts"); got != 0 {
		t.Errorf("callrec_tracker_contacts = %v, want 0", got)
	}
}

// TestRetentionSurvivesRestart: a restarted tracker keeps counting an ended
// contact's retention from its last event (not from the restart), hands
// consolidation only the retained contacts, and still refuses late events
// of contacts retired before the restart.
func TestRetentionSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	clock := newClock()
	const other = "WT00000000000000000000000000000002"
	ended := answeredEvents().events
	e := openRetEnv(t, path, clock, &contactSink{})
	e.handle(ended...)
	e.close()

	clock.Add(20 * time.Hour)
	sink := &contactSink{}
	e = openRetEnv(t, path, clock, sink)
	if len(sink.got) != 1 || sink.got[0].TaskSID != taskSID {
		t.Fatalf("restored contacts handed over: %+v", sink.got)
	}
	if got := e.metric("callrec_tracker_contacts"); got != 1 {
		t.Errorf("callrec_tracker_contacts after restart = %v, want 1", got)
	}
	e.retire(0)
	e.handle(liveEvents(other)...)
	clock.Add(4 * time.Hour)
	e.retire(1) // 24 h after its last event, 4 h after the restart
	e.has(taskSID, false)
	e.has(other, true)
	e.close()

	clock.Add(time.Hour)
	sink = &contactSink{}
	e = openRetEnv(t, path, clock, sink)
	if len(sink.got) != 1 || sink.got[0].TaskSID != other {
		t.Fatalf("restored contacts handed over: %+v, want only the live one", sink.got)
	}
	e.has(taskSID, false)
	e.handle(ended[2])
	e.has(taskSID, false)
	if got := e.metric("callrec_tracker_late_events_total"); got != 1 {
		t.Errorf("callrec_tracker_late_events_total after restart = %v, want 1", got)
	}
	if n := e.orders.count(); n != 0 {
		t.Errorf("%d orders after restart, want none", n)
	}

	// Tombstones go after their own period; then the task is unknown again.
	clock.Add(tombstones)
	e.retire(0)
	if _, ok, err := e.st.Tombstone(context.Background(), taskSID); ok || err != nil {
		t.Errorf("tombstone after %v: %v, %v", tombstones, ok, err)
	}
}

// TestRetentionWaitsForSink: a contact whose final state consolidation has
// not acknowledged is not retired, however old, until it does; a sweep
// hands it over again.
func TestRetentionWaitsForSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracker.db")
	clock := newClock()
	sink := &contactSink{}
	e := openRetEnv(t, path, clock, sink)
	evs := answeredEvents().events
	last := len(evs) - 1
	e.handle(evs[:last]...)
	sink.fail = errors.New("consolidation down")
	if err := e.svc.HandleEvent(context.Background(), evs[last]); !errors.Is(err, sink.fail) {
		t.Fatalf("last event with consolidation down: %v", err)
	}
	clock.Add(2 * retention)
	if n, err := e.svc.RetireContacts(context.Background()); n != 0 || !errors.Is(err, sink.fail) {
		t.Fatalf("sweep with consolidation down: %d retired, %v", n, err)
	}
	e.has(taskSID, true)
	if got := e.metric("callrec_tracker_contacts_unacknowledged"); got != 1 {
		t.Errorf("callrec_tracker_contacts_unacknowledged = %v, want 1", got)
	}
	e.close()

	// Consolidation still down at the restart: the restored contact is not
	// acknowledged either.
	e = openRetEnv(t, path, clock, sink)
	clock.Add(retention)
	if n, err := e.svc.RetireContacts(context.Background()); n != 0 || err == nil {
		t.Fatalf("sweep after restart with consolidation down: %d retired, %v", n, err)
	}
	e.has(taskSID, true)

	sink.fail = nil
	handed := len(sink.got)
	e.retire(1)
	e.has(taskSID, false)
	if got := sink.got[handed:]; len(got) != 1 || got[0].Status != callrec.ContactEnded {
		t.Fatalf("consolidation got %d contacts: %+v; want the ended one", len(got), got)
	}
	if got := e.metric("callrec_tracker_contacts_unacknowledged"); got != 0 {
		t.Errorf("callrec_tracker_contacts_unacknowledged = %v, want 0", got)
	}
}

// memContacts is a ContactStore that cannot retire.
type memContacts struct{}

func (memContacts) PutContact(context.Context, string, []byte) error { return nil }
func (memContacts) Contacts(context.Context) (map[string][]byte, error) {
	return map[string][]byte{}, nil
}

// TestSetRetention: retention needs a store that can retire, and
// tombstones that outlive the retention; off, it needs neither.
func TestSetRetention(t *testing.T) {
	svc, err := tracker.NewService(context.Background(), defaultRules, tracker.AlarmConfig{}, tracker.HoldConfig{}, &orders{}, memContacts{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetRetention(tracker.RetentionConfig{Retention: time.Hour}); err == nil {
		t.Error("retention on a store that cannot retire: no error")
	}
	if err := svc.SetRetention(tracker.RetentionConfig{}); err != nil {
		t.Errorf("retention off: %v", err)
	}
	if n, err := svc.RetireContacts(context.Background()); n != 0 || err != nil {
		t.Errorf("sweep with retention off: %d, %v", n, err)
	}
	for _, cfg := range []tracker.RetentionConfig{{Retention: -time.Hour}, {Retention: 48 * time.Hour, Tombstones: 24 * time.Hour}} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v: valid", cfg)
		}
	}
	if err := (tracker.RetentionConfig{Retention: 30 * 24 * time.Hour}).Validate(); err != nil {
		t.Errorf("a long retention with default tombstones: %v", err)
	}
}

// TestRunRetention: the loop retires on its own and stops with ctx.
func TestRunRetention(t *testing.T) {
	clock := newClock()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := tracker.NewService(context.Background(), defaultRules, tracker.AlarmConfig{}, tracker.HoldConfig{}, &submits{}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetRetention(tracker.RetentionConfig{Retention: time.Hour, Every: 5 * time.Millisecond, Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range answeredEvents().events {
		if err := svc.HandleEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunRetention(ctx) }()
	time.Sleep(20 * time.Millisecond)
	if _, ok := svc.Contact(taskSID); !ok {
		t.Fatal("retired before its retention")
	}
	clock.Add(time.Hour)
	callrectest.Eventually(t, 5*time.Second, "contact retired", func() bool {
		_, ok := svc.Contact(taskSID)
		return !ok
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
