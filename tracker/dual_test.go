package tracker_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
	"callrec/tracker"
	"callrec/tracker/bolt"
	"callrec/tracker/streams"
)

// forwarder records the orders the Service submits and hands them to the
// Stream Manager.
type forwarder struct {
	m  *streams.Manager
	mu sync.Mutex
	// decided counts the distinct decisions (by key) the Service took.
	decided map[string]streams.Order
}

func (f *forwarder) Submit(ctx context.Context, o streams.Order) (bool, error) {
	f.mu.Lock()
	f.decided[o.Key] = o
	f.mu.Unlock()
	return f.m.Submit(ctx, o)
}

// dualRig is a Service whose Stream Manager starts dual streams on a fake
// Twilio.
type dualRig struct {
	fake  *twiliotest.Fake
	store *bolt.Store
	fwd   *forwarder
	svc   *tracker.Service
}

func newDualRig(t *testing.T) *dualRig {
	t.Helper()
	fake := twiliotest.New(accountSID, "authtoken123")
	fake.AddCall(customerLeg)
	fake.AddCall(agentLeg)
	fake.AddConference(conferenceID, twiliotest.Participant{CallSID: customerLeg, Label: "customer", Status: "connected"},
		twiliotest.Participant{CallSID: agentLeg, Label: "worker", Status: "connected"})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: accountSID, AuthToken: "authtoken123", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := streams.New(streams.Config{MediaURL: "wss://rec.example.com/media", DualStreams: true,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}, rc, st, callrectest.Logger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	fwd := &forwarder{m: m, decided: map[string]streams.Order{}}
	svc, err := tracker.NewService(context.Background(), defaultRules, tracker.AlarmConfig{}, tracker.HoldConfig{}, fwd, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &dualRig{fake: fake, store: st, fwd: fwd, svc: svc}
}

// settle waits until the Stream Manager has carried out every order.
func (r *dualRig) settle(t *testing.T) {
	t.Helper()
	callrectest.Eventually(t, 10*time.Second, "no stream order pending", func() bool {
		p, err := r.store.Pending(context.Background())
		return err == nil && len(p) == 0
	})
}

// TestDualStreamsFromEvents: the answered call's events, duplicated and in
// random orders, handled one at a time: whatever the order, each start
// decision starts exactly one stream per copy at Twilio, each stop decision
// stops exactly one per copy, both copies carry the decision's parameters
// plus the pair's, and nothing is left running.
func TestDualStreamsFromEvents(t *testing.T) {
	evs := answeredEvents().events
	orders := [][]int{identity(len(evs))}
	var twice []int // every event redelivered at once
	for i := range evs {
		twice = append(twice, i, i)
	}
	orders = append(orders, twice)
	rng := rand.New(rand.NewPCG(20251122, 2))
	for range 6 {
		o := identity(len(evs))
		rng.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
		orders = append(orders, withDuplicates(rng, o))
	}
	startedSomewhere := false
	for n, order := range orders {
		r := newDualRig(t)
		for _, i := range order {
			if err := r.svc.HandleEvent(context.Background(), evs[i]); err != nil {
				t.Fatal(err)
			}
			r.settle(t) // one event at a time: no start races its stop
		}
		creates := map[string]int{}
		stops := map[string]int{}
		for _, req := range r.fake.Requests() {
			if req.Status != http.StatusOK {
				t.Errorf("order %v: %s %s answered %d", order, req.Op, req.Path, req.Status)
				continue
			}
			switch req.Op {
			case twiliotest.OpCreateStream:
				creates[req.Form["Name"]]++
			case twiliotest.OpStopStream:
				stops[req.Path[strings.LastIndex(req.Path, "/")+1:strings.LastIndex(req.Path, ".json")]]++
			}
		}
		var wantStarts, wantStops int
		for _, o := range r.fwd.decided {
			for k := 1; k <= streams.DualCopies; k++ {
				name := streams.CopyName(o.Name, k)
				switch o.Kind {
				case streams.Start:
					wantStarts++
					startedSomewhere = true
					if creates[name] != 1 {
						t.Errorf("order %v: %d Start Stream of %s, want 1", order, creates[name], name)
					}
				case streams.Stop:
					wantStops++
					if stops[name] != 1 {
						t.Errorf("order %v: %d Stop Stream of %s, want 1", order, stops[name], name)
					}
				}
			}
		}
		if n < 2 && (wantStarts != 2 || wantStops != 2) { // the real order, with and without duplicates
			t.Errorf("order %v: %d copies started and %d stopped, want 2 and 2", order, wantStarts, wantStops)
		}
		if len(creates) != wantStarts || len(stops) != wantStops {
			t.Errorf("order %v: streams started %v and stopped %v; want %d and %d", order, creates, stops, wantStarts, wantStops)
		}
		for _, s := range r.fake.Streams() {
			pair, err := callrec.PairFromParams(s.Params)
			if err != nil || pair == nil || pair.Copies != 2 || s.Params["task_sid"] != taskSID || s.Params["agent"] != alice.name ||
				!strings.HasSuffix(s.URL, "/pair/"+pair.Group+"/"+s.Params[callrec.ParamCopy]) {
				t.Errorf("order %v: stream %s to %s with %v (%v)", order, s.Name, s.URL, s.Params, err)
			}
			if s.Status != "stopped" {
				t.Errorf("order %v: %s still %s at the end", order, s.Name, s.Status)
			}
		}
	}
	if !startedSomewhere {
		t.Error("no order started a stream: the test checks nothing")
	}
}
