package eventadapter_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/eventadapter"
	"callrec/internal/callrectest"
)

// fakeSink records the events it handled; fail, when set, decides which
// events fail.
type fakeSink struct {
	mu     sync.Mutex
	events []callrec.CTIEvent
	fail   func(ev callrec.CTIEvent) error
}

func (s *fakeSink) HandleEvent(_ context.Context, ev callrec.CTIEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(ev); err != nil {
			return err
		}
	}
	s.events = append(s.events, ev)
	return nil
}

func (s *fakeSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, ev := range s.events {
		ids = append(ids, ev.ID)
	}
	return ids
}

type testAdapter struct {
	*eventadapter.Adapter
	sink  *fakeSink
	dedup eventadapter.Deduper
	reg   *prometheus.Registry
}

func newTestAdapter(t *testing.T) *testAdapter {
	t.Helper()
	ta := &testAdapter{sink: &fakeSink{}, dedup: eventadapter.NewMemoryDeduper(100), reg: prometheus.NewRegistry()}
	ta.Adapter = eventadapter.New(ta.sink, ta.dedup, callrectest.Logger(t), ta.reg)
	return ta
}

// metric returns the value of a counter (or a histogram's sample count)
// with the given labels.
func (ta *testAdapter) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ta.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func fixtureRecord(t *testing.T, name string) eventadapter.Record {
	return eventadapter.Record{Data: callrectest.Fixture(t, "event-streams/"+name), Origin: "test:" + name, Arrived: time.Now()}
}

const (
	idCreated  = "EZb231169d792bdd9a88d6d84323a1eb05"
	idAccepted = "EZ5707822729a621a69762ce428e6707c6"
	idUpdated  = "EZ5454ffc53f676b65f7cbdb7ba44f2721"
	idWrapup   = "EZ6ee49451207f9f63df6125e75ccbcef9"
	idComplete = "EZb7670c6983bcf42fbbde1e2888a3a8e2"
)

func TestAdapter_Handle(t *testing.T) {
	ta := newTestAdapter(t)
	ctx := callrectest.Context(t)
	before := time.Now().UTC()
	err := ta.Handle(ctx, []eventadapter.Record{
		fixtureRecord(t, "webhook-sink-batch.json"), // created, accepted
		fixtureRecord(t, "task.updated.conference.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{idCreated, idAccepted, idUpdated}); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
	for _, ev := range ta.sink.events {
		if ev.Received.Before(before) || ev.Received.Location() != time.UTC || !strings.HasPrefix(ev.Origin, "test:") {
			t.Errorf("event %s: Received %v, Origin %q", ev.ID, ev.Received, ev.Origin)
		}
	}
	if got := ta.metric(t, "callrec_events_total", "type", "reservation.accepted"); got != 1 {
		t.Errorf("events_total{reservation.accepted} = %v, want 1", got)
	}
	if got := ta.metric(t, "callrec_event_lag_seconds"); got != 3 {
		t.Errorf("lag samples = %v, want 3", got)
	}
	seen, err := ta.dedup.Seen(ctx, []string{idCreated, idAccepted, idUpdated, idWrapup})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seen, []bool{true, true, true, false}); diff != "" {
		t.Errorf("remembered (-got +want):\n%s", diff)
	}
}

func TestAdapter_Duplicates(t *testing.T) {
	ta := newTestAdapter(t)
	ctx := callrectest.Context(t)
	// Within one batch: accepted comes alone, in the webhook batch, and
	// again alone.
	err := ta.Handle(ctx, []eventadapter.Record{
		fixtureRecord(t, "reservation.accepted.json"),
		fixtureRecord(t, "webhook-sink-batch.compact.json"),
		fixtureRecord(t, "reservation.accepted.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{idAccepted, idCreated}); diff != "" {
		t.Errorf("first batch handled (-got +want):\n%s", diff)
	}
	// Across batches: Event Streams redelivers.
	err = ta.Handle(ctx, []eventadapter.Record{
		fixtureRecord(t, "webhook-sink-batch.json"),
		fixtureRecord(t, "reservation.wrapup.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{idAccepted, idCreated, idWrapup}); diff != "" {
		t.Errorf("after second batch handled (-got +want):\n%s", diff)
	}
	if got := ta.metric(t, "callrec_events_duplicate_total"); got != 4 {
		t.Errorf("duplicates = %v, want 4", got)
	}
}

func TestAdapter_Skips(t *testing.T) {
	ta := newTestAdapter(t)
	unknown := mutated(t, func(ce, _ map[string]any) {
		ce["id"], ce["type"] = "EZunknown", "com.twilio.taskrouter.worker.activity.update"
	})
	other := mutated(t, func(ce, _ map[string]any) {
		ce["id"], ce["type"] = "EZother", "com.twilio.voice.status-callback.call.completed"
	})
	badAttrs := mutated(t, func(ce, p map[string]any) {
		ce["id"], p["task_attributes"] = "EZbad", `{"from":"+14155550123"`
	})
	batch := "[" + string(unknown) + ",\n" + string(callrectest.Fixture(t, "event-streams/task.created.json")) + "]"
	err := ta.Handle(callrectest.Context(t), []eventadapter.Record{
		{Data: unknown, Origin: "k/1"},
		{Data: other, Origin: "k/2"},
		{Data: badAttrs, Origin: "k/3"},
		{Data: []byte("not json"), Origin: "k/4"},
		{Data: []byte(" [1, {"), Origin: "k/5"},
		{Data: []byte(batch), Origin: "k/6"},
		fixtureRecord(t, "task.wrapup.json"),
	})
	if err != nil {
		t.Fatalf("Handle = %v, want nil (skips are not errors)", err)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{"EZ18a73f7f5ef967218799fb4e7ea58ddd", "EZ0153ef77f9b0a913a0cdfdd31dba3b0e"}); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
	for reason, want := range map[string]float64{"unknown_type": 2, "not_taskrouter": 1, "malformed": 3} {
		if got := ta.metric(t, "callrec_events_skipped_total", "reason", reason); got != want {
			t.Errorf("skipped{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := ta.metric(t, "callrec_events_total", "type", "worker.activity.update"); got != 0 {
		t.Errorf("unknown type counted as handled: %v", got)
	}
}

func TestAdapter_SinkErrorRetry(t *testing.T) {
	ta := newTestAdapter(t)
	ctx := callrectest.Context(t)
	errDown := errors.New("tracker down")
	fails := 1
	ta.sink.fail = func(ev callrec.CTIEvent) error {
		if ev.ID == idWrapup && fails > 0 {
			fails--
			return errDown
		}
		return nil
	}
	batch := []eventadapter.Record{
		fixtureRecord(t, "webhook-sink-batch.json"), // created, accepted
		fixtureRecord(t, "reservation.wrapup.json"),
		fixtureRecord(t, "reservation.completed.json"),
	}
	err := ta.Handle(ctx, batch)
	if !errors.Is(err, errDown) {
		t.Fatalf("Handle = %v, want %v", err, errDown)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{idCreated, idAccepted}); diff != "" {
		t.Errorf("handled before the failure (-got +want):\n%s", diff)
	}
	seen, err := ta.dedup.Seen(ctx, []string{idCreated, idAccepted, idWrapup, idComplete})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seen, []bool{true, true, false, false}); diff != "" {
		t.Errorf("remembered after the failure (-got +want):\n%s", diff)
	}

	// The source retries the same batch.
	if err := ta.Handle(ctx, batch); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if diff := cmp.Diff(ta.sink.ids(), []string{idCreated, idAccepted, idWrapup, idComplete}); diff != "" {
		t.Errorf("handled overall (-got +want):\n%s", diff)
	}
	if err := ta.Handle(ctx, batch); err != nil {
		t.Fatalf("second retry: %v", err)
	}
	if got := len(ta.sink.ids()); got != 4 {
		t.Errorf("handled %d events after a second retry, want 4", got)
	}
}

// failingDeduper fails every call.
type failingDeduper struct{ err error }

func (d failingDeduper) Seen(context.Context, []string) ([]bool, error)      { return nil, d.err }
func (d failingDeduper) Remember(context.Context, []string, time.Time) error { return d.err }

func TestAdapter_DeduperError(t *testing.T) {
	sink := &fakeSink{}
	errDB := errors.New("disk full")
	a := eventadapter.New(sink, failingDeduper{errDB}, nil, nil)
	err := a.Handle(callrectest.Context(t), []eventadapter.Record{fixtureRecord(t, "task.created.json")})
	if !errors.Is(err, errDB) {
		t.Errorf("Handle = %v, want %v", err, errDB)
	}
	if len(sink.ids()) != 0 {
		t.Errorf("sink got %v without dedupe", sink.ids())
	}
}

func TestAdapter_Empty(t *testing.T) {
	ta := newTestAdapter(t)
	for _, recs := range [][]eventadapter.Record{nil, {{Data: []byte("[]"), Origin: "webhook"}}} {
		if err := ta.Handle(callrectest.Context(t), recs); err != nil {
			t.Errorf("Handle(%v) = %v", recs, err)
		}
	}
}

func TestMemoryDeduper(t *testing.T) {
	ctx := callrectest.Context(t)
	d := eventadapter.NewMemoryDeduper(3)
	remember := func(ids ...string) {
		t.Helper()
		if err := d.Remember(ctx, ids, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	remember("a", "b", "c")
	remember("a") // already there: does not move it
	remember("d") // evicts a, the oldest
	remember("e", "f")
	seen, err := d.Seen(ctx, []string{"a", "b", "c", "d", "e", "f", "g"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seen, []bool{false, false, false, true, true, true, false}); diff != "" {
		t.Errorf("Seen (-got +want):\n%s", diff)
	}
}

func TestNew_Registers(t *testing.T) {
	reg := prometheus.NewRegistry()
	eventadapter.New(&fakeSink{}, eventadapter.NewMemoryDeduper(1), nil, reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	want := map[string]int{
		"callrec_events_duplicate_total": 1,
		"callrec_events_skipped_total":   3, // zeros exported for every reason
		"callrec_event_lag_seconds":      1,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("registered series (-got +want):\n%s", diff)
	}
}
