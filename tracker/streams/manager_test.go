package streams_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
	"callrec/tracker/streams"
)

const (
	acct  = "ACe268443e43d93dab7ebef303bbe9642f"
	token = "authtoken123"
	call  = "CAc0bb2f535401483f8461ddeef83c2d68"
	agent = "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
	conf  = "CFab3049da9a0cd8d6e8b7c62586752472"
)

type env struct {
	fake  *twiliotest.Fake
	rc    *twilio.REST // a client of fake
	store *streams.MemoryStore
	m     *streams.Manager
	stop  context.CancelFunc
	done  chan struct{}
}

func newEnv(t *testing.T, cfg streams.Config, store *streams.MemoryStore) *env {
	t.Helper()
	fake := twiliotest.New(acct, token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: token, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = streams.NewMemoryStore()
	}
	e := &env{fake: fake, rc: rc, store: store}
	e.start(t, cfg, rc)
	return e
}

func (e *env) start(t *testing.T, cfg streams.Config, api streams.API) {
	t.Helper()
	if cfg.MediaURL == "" {
		cfg.MediaURL = "wss://rec.example.com/media"
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	}
	e.m = streams.New(cfg, api, e.store, callrectest.Logger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan struct{})
	go func() { _ = e.m.Run(ctx); close(e.done) }()
	t.Cleanup(func() { cancel(); <-e.done })
}

func startOrder(name string) streams.Order {
	return streams.Order{Key: streams.StartKey(name), Kind: streams.Start, TaskSID: "WT1", CallSID: call, Name: name,
		Params: []twilio.Param{{Name: "task_sid", Value: "WT1"}, {Name: "agent", Value: "alice@example.com"}}, Since: time.Now()}
}

func stopOrder(name string) streams.Order {
	return streams.Order{Key: streams.StopKey(name), Kind: streams.Stop, TaskSID: "WT1", CallSID: call, Name: name}
}

func (e *env) waitIntent(t *testing.T, key string) streams.Intent {
	t.Helper()
	var in streams.Intent
	callrectest.Eventually(t, 10*time.Second, "intent "+key+" finished", func() bool {
		var ok bool
		in, ok, _ = e.store.Get(context.Background(), key)
		return ok && in.State != streams.Pending
	})
	return in
}

func submit(t *testing.T, m *streams.Manager, o streams.Order) bool {
	t.Helper()
	ok, err := m.Submit(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func count(reqs []twiliotest.Request, op twiliotest.Op, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Op == op && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

func TestStartStopExactlyOnce(t *testing.T) {
	e := newEnv(t, streams.Config{StatusCallback: "https://rec.example.com/twilio/stream-status"}, nil)
	e.fake.AddCall(call)
	if !submit(t, e.m, startOrder("rec-WT1")) {
		t.Fatal("first submit ignored")
	}
	in := e.waitIntent(t, streams.StartKey("rec-WT1"))
	if in.State != streams.Done || in.Outcome != "started" || in.StreamSID == "" || in.Resolved != call {
		t.Fatalf("start intent %+v", in)
	}
	for range 3 { // redelivered decisions
		if submit(t, e.m, startOrder("rec-WT1")) {
			t.Error("a redelivered start was accepted")
		}
	}
	s := e.fake.Streams()
	if len(s) != 1 || s[0].Name != "rec-WT1" || s[0].Track != "both_tracks" || s[0].URL != "wss://rec.example.com/media" ||
		s[0].StatusCallback != "https://rec.example.com/twilio/stream-status" || s[0].Params["agent"] != "alice@example.com" {
		t.Fatalf("streams at Twilio: %+v", s)
	}
	submit(t, e.m, stopOrder("rec-WT1"))
	submit(t, e.m, stopOrder("rec-WT1"))
	if in := e.waitIntent(t, streams.StopKey("rec-WT1")); in.Outcome != "stopped" {
		t.Fatalf("stop intent %+v", in)
	}
	reqs := e.fake.Requests()
	if c, s := count(reqs, twiliotest.OpCreateStream, 0), count(reqs, twiliotest.OpStopStream, 0); c != 1 || s != 1 {
		t.Errorf("%d create and %d stop requests, want 1 and 1", c, s)
	}
	if e.fake.Streams()[0].Status != "stopped" {
		t.Error("stream not stopped at Twilio")
	}
}

func TestRetriesAndErrorPaths(t *testing.T) {
	e := newEnv(t, streams.Config{}, nil)
	e.fake.AddCall(call)
	e.fake.Fail(twiliotest.OpCreateStream, 429, 20429, 2)
	submit(t, e.m, startOrder("rec-retry"))
	if in := e.waitIntent(t, streams.StartKey("rec-retry")); in.Outcome != "started" || in.Attempts != 3 {
		t.Errorf("after two 429s: %+v", in)
	}
	// A stream Twilio does not know (never started, or the call ended and
	// took it): stop answers 404, which is success.
	submit(t, e.m, stopOrder("rec-missing"))
	if in := e.waitIntent(t, streams.StopKey("rec-missing")); in.State != streams.Done || in.Outcome != "already_gone" {
		t.Errorf("stop of a stream Twilio does not know: %+v", in)
	}
	e.fake.Fail(twiliotest.OpStopStream, 404, 20404, 1)
	submit(t, e.m, stopOrder("rec-retry"))
	if in := e.waitIntent(t, streams.StopKey("rec-retry")); in.State != streams.Done || in.Outcome != "already_gone" {
		t.Errorf("stop answered 404: %+v", in)
	}
	// A call that ended before the order went out: 21220, no retry.
	e.fake.AddCall("CA00000000000000000000000000000002")
	e.fake.EndCall("CA00000000000000000000000000000002")
	o := startOrder("rec-ended")
	o.CallSID = "CA00000000000000000000000000000002"
	submit(t, e.m, o)
	if in := e.waitIntent(t, streams.StartKey("rec-ended")); in.State != streams.Abandoned || in.Outcome != "call_ended" || in.Attempts != 1 {
		t.Errorf("start on an ended call: %+v", in)
	}
}

func TestConferenceLookup(t *testing.T) {
	e := newEnv(t, streams.Config{}, nil)
	e.fake.AddCall(call)
	e.fake.AddConference(conf, twiliotest.Participant{CallSID: agent, Status: "connected"}, twiliotest.Participant{CallSID: call, Status: "connected"})
	o := startOrder("rec-conf")
	o.CallSID, o.ConferenceSID, o.AgentLegs = "", conf, []string{agent}
	submit(t, e.m, o)
	if in := e.waitIntent(t, streams.StartKey("rec-conf")); in.Outcome != "started" || in.Resolved != call {
		t.Errorf("conference lookup: %+v", in)
	}
}

func TestCircuitBreaker(t *testing.T) {
	e := newEnv(t, streams.Config{BreakerFails: 3, BreakerOpen: 300 * time.Millisecond}, nil)
	e.fake.AddCall(call)
	e.fake.Fail(twiliotest.OpCreateStream, 503, 0, 3)
	submit(t, e.m, startOrder("rec-cb"))
	callrectest.Eventually(t, 5*time.Second, "circuit opens", e.m.CircuitOpen)
	before := len(e.fake.Requests())
	if n := count(e.fake.Requests(), twiliotest.OpCreateStream, 503); n != 3 {
		t.Errorf("%d failed requests before the circuit opened, want 3", n)
	}
	in := e.waitIntent(t, streams.StartKey("rec-cb"))
	if in.Outcome != "started" || e.m.CircuitOpen() {
		t.Fatalf("after recovery: %+v, open %v", in, e.m.CircuitOpen())
	}
	if got := len(e.fake.Requests()) - before; got != 1 {
		t.Errorf("%d requests after the circuit opened, want the single trial", got)
	}
	if time.Since(in.Created) < 300*time.Millisecond {
		t.Errorf("started %v after submission, before the circuit's open time passed", time.Since(in.Created))
	}
}

func TestStopBeforeStart(t *testing.T) {
	e := newEnv(t, streams.Config{BackoffBase: time.Hour, BackoffMax: time.Hour}, nil)
	e.fake.AddCall(call)
	e.fake.Fail(twiliotest.OpCreateStream, 503, 0, 1)
	submit(t, e.m, startOrder("rec-sbs"))
	callrectest.Eventually(t, 5*time.Second, "first attempt failed", func() bool {
		in, _, _ := e.store.Get(context.Background(), streams.StartKey("rec-sbs"))
		return in.Attempts == 1
	})
	submit(t, e.m, stopOrder("rec-sbs"))
	if in := e.waitIntent(t, streams.StopKey("rec-sbs")); in.Outcome != "never_started" {
		t.Errorf("stop: %+v", in)
	}
	if in := e.waitIntent(t, streams.StartKey("rec-sbs")); in.State != streams.Abandoned || in.Outcome != "stopped_before_start" {
		t.Errorf("start: %+v", in)
	}
	if n := count(e.fake.Requests(), twiliotest.OpStopStream, 0); n != 0 {
		t.Errorf("%d stop requests for a stream that never started", n)
	}
}

// TestRestartCarriesOn: a new manager on the same store finishes what the
// old one left pending and repeats nothing it finished.
func TestRestartCarriesOn(t *testing.T) {
	store := streams.NewMemoryStore()
	e := newEnv(t, streams.Config{}, store)
	e.fake.AddCall(call)
	submit(t, e.m, startOrder("rec-a"))
	e.waitIntent(t, streams.StartKey("rec-a"))
	e.stop()
	<-e.done
	// Submitted while no manager runs, e.g. saved just before a crash.
	if _, err := store.Add(context.Background(), streams.Intent{Order: stopOrder("rec-a"), State: streams.Pending, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, streams.Config{}, store)
	e2.fake.AddCall(call)
	// The second fake stands for Twilio after our restart: it never saw rec-a.
	if in := e2.waitIntent(t, streams.StopKey("rec-a")); in.Outcome != "already_gone" {
		t.Errorf("stop after restart: %+v", in)
	}
	if n := count(e2.fake.Requests(), twiliotest.OpCreateStream, 0); n != 0 {
		t.Errorf("the finished start was repeated after the restart (%d creates)", n)
	}
}

// TestRestartAfterStreamError: Twilio reports the live stream dead while
// the call is up; a replacement is started once, naming what it replaces;
// a repeated or stale callback orders nothing; the later stop goes to the
// replacement.
func TestRestartAfterStreamError(t *testing.T) {
	e := newEnv(t, streams.Config{}, nil)
	e.fake.AddCall(call)
	submit(t, e.m, startOrder("rec-err"))
	first := e.waitIntent(t, streams.StartKey("rec-err"))
	ctx := context.Background()
	ok, err := e.m.StreamFailed(ctx, "rec-err", first.StreamSID, "connection refused")
	if err != nil || !ok {
		t.Fatalf("StreamFailed = %v, %v; want a restart", ok, err)
	}
	for _, name := range []string{"rec-err", "rec-unknown"} { // repeated, and unknown
		if ok, err := e.m.StreamFailed(ctx, name, first.StreamSID, "again"); err != nil || ok {
			t.Errorf("StreamFailed(%s) again = %v, %v; want nothing", name, ok, err)
		}
	}
	callrectest.Eventually(t, 5*time.Second, "replacement started", func() bool { return len(e.fake.Streams()) == 2 })
	repl := e.fake.Streams()[1]
	if repl.Name != "rec-err-restart1" || repl.Params["restart_of"] != first.StreamSID || repl.Params["task_sid"] != "WT1" || repl.CallSID != call {
		t.Errorf("replacement stream %+v", repl)
	}
	submit(t, e.m, stopOrder("rec-err"))
	if in := e.waitIntent(t, streams.StopKey("rec-err")); in.Outcome != "stopped" {
		t.Fatalf("stop: %+v", in)
	}
	if got := e.fake.Streams()[1]; got.Status != "stopped" {
		t.Errorf("replacement %s is %s after the stop, want stopped", got.Name, got.Status)
	}
	if ok, _ := e.m.StreamFailed(ctx, "rec-err-restart1", repl.SID, "after stop"); ok {
		t.Error("a stream whose stop was decided was restarted")
	}
}
