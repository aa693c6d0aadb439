package cti_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/eventadapter"
	eabolt "callrec/eventadapter/bolt"
	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
	"callrec/tracker"
	trbolt "callrec/tracker/bolt"
	"callrec/tracker/streams"
)

const authToken = "0123456789abcdef0123456789abcdef" // twilio-go refuses a token that is not alphanumeric

// env is the CTI path of `callrec run`: eventadapter → tracker service →
// Stream Manager → Twilio REST client → a Twilio fake on 127.0.0.1.
type env struct {
	adapter *eventadapter.Adapter
	svc     *tracker.Service
	intents streams.Store
	fake    *twiliotest.Fake
	api     *apiRecorder
	sink    *timingSink

	cancel  context.CancelFunc
	done    chan struct{}
	closers []func()
}

// newEnv builds the path. With persistent, the dedupe window, contacts and
// intents are in bbolt files in a temporary directory, as in production;
// otherwise in memory.
func newEnv(tb testing.TB, persistent bool) *env {
	tb.Helper()
	e := &env{fake: twiliotest.New(accountSID, authToken), done: make(chan struct{})}
	e.api = &apiRecorder{next: e.fake, starts: map[string]time.Time{}}
	srv := httptest.NewServer(e.api) // 127.0.0.1
	e.closers = append(e.closers, srv.Close)

	var dedupe eventadapter.Deduper
	var contacts tracker.ContactStore
	if persistent {
		dir := tb.TempDir()
		ev, err := eabolt.Open(filepath.Join(dir, "events.db"))
		if err != nil {
			tb.Fatal(err)
		}
		e.closers = append(e.closers, func() { _ = ev.Close() })
		tr, err := trbolt.Open(filepath.Join(dir, "tracker.db"))
		if err != nil {
			tb.Fatal(err)
		}
		e.closers = append(e.closers, func() { _ = tr.Close() })
		dedupe, contacts, e.intents = ev, tr, tr
	} else {
		dedupe, contacts, e.intents = eventadapter.NewMemoryDeduper(0), &memContacts{m: map[string][]byte{}}, streams.NewMemoryStore()
	}

	rest, err := twilio.NewREST(twilio.RESTConfig{AccountSID: accountSID, AuthToken: authToken, BaseURL: srv.URL})
	if err != nil {
		tb.Fatal(err)
	}
	mgr := streams.New(streams.Config{MediaURL: "wss://media.example.com/twilio/media",
		StatusCallback: "https://callrec.example.com/twilio/stream-status"}, rest, e.intents, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.svc, err = tracker.NewService(ctx, tracker.Rules{MonitorAll: true}, tracker.AlarmConfig{}, tracker.HoldConfig{}, mgr, contacts, nil, nil)
	if err != nil {
		cancel()
		e.close()
		tb.Fatal(err)
	}
	e.sink = &timingSink{next: e.svc, accepted: map[string]time.Time{}}
	e.adapter = eventadapter.New(e.sink, dedupe, nil, nil)
	go func() { defer close(e.done); _ = mgr.Run(ctx) }()
	tb.Cleanup(e.close)
	return e
}

// close stops the Stream Manager and closes the stores; it may be called
// more than once.
func (e *env) close() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// addCalls makes the workload's customer legs exist at the fake, in
// progress.
func (e *env) addCalls(w workload) {
	for _, c := range w.Calls {
		e.fake.AddCall(c.CustomerLeg)
	}
}

// waitDrained waits until the Stream Manager has no pending intent left.
func (e *env) waitDrained(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, err := e.intents.Pending(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if len(p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d stream intents still pending after %v, first %s: %s", len(p), timeout, p[0].Key, p[0].LastError)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// apiRecorder sits in front of the Twilio fake and notes when each Start
// Stream request (by stream name) arrives, and how many Stop Stream
// requests arrive.
type apiRecorder struct {
	next http.Handler

	mu     sync.Mutex
	starts map[string]time.Time // stream name → first Start Stream request
	nStart int
	nStop  int
}

func (h *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/Calls/") {
		_ = r.ParseForm() // the fake parses again: ParseForm keeps the result
		h.mu.Lock()
		if strings.HasSuffix(r.URL.Path, "/Streams.json") {
			h.nStart++
			name := r.PostForm.Get("Name")
			if _, ok := h.starts[name]; !ok {
				h.starts[name] = now
			}
		} else if strings.Contains(r.URL.Path, "/Streams/") {
			h.nStop++
		}
		h.mu.Unlock()
	}
	h.next.ServeHTTP(w, r)
}

// counts returns the Start and Stop requests received so far.
func (h *apiRecorder) counts() (starts, stops int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nStart, h.nStop
}

// startedAt returns when the Start Stream request of a stream arrived.
func (h *apiRecorder) startedAt(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.starts[name]
	return t, ok
}

// timingSink sits between the adapter and the tracker service and notes
// when each task's reservation.accepted reaches the tracker.
type timingSink struct {
	next callrec.EventSink

	mu       sync.Mutex
	accepted map[string]time.Time // task SID → first reservation.accepted
}

func (s *timingSink) HandleEvent(ctx context.Context, ev callrec.CTIEvent) error {
	if ev.Type == callrec.EventReservationAccepted {
		now := time.Now()
		s.mu.Lock()
		if _, ok := s.accepted[ev.TaskSID]; !ok {
			s.accepted[ev.TaskSID] = now
		}
		s.mu.Unlock()
	}
	return s.next.HandleEvent(ctx, ev)
}

// acceptedAt returns when a task's reservation.accepted reached the tracker.
func (s *timingSink) acceptedAt(taskSID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.accepted[taskSID]
	return t, ok
}

// memContacts is an in-memory tracker.ContactStore.
type memContacts struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memContacts) PutContact(_ context.Context, taskSID string, snapshot []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[taskSID] = snapshot
	return nil
}

func (s *memContacts) Contacts(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out, nil
}
