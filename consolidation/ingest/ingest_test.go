package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/ingest"
	"callrec/consolidation/join"
	"callrec/consolidation/store"
	"callrec/internal/callrectest"
)

const token = "ingest-token-0123456789"

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// joinEnv is a real joiner over a real store.
type joinEnv struct {
	st *store.Store
	j  *join.Joiner
}

func newJoinEnv(t *testing.T) *joinEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := join.New(st, filepath.Join(dir, "join.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &joinEnv{st: st, j: j}
}

// serve serves the ingest handler on loopback.
func (e *joinEnv) serve(t *testing.T, tok string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(&ingest.Handler{Token: tok, Joiner: e.j, Log: callrectest.Logger(t)})
	t.Cleanup(srv.Close)
	return srv
}

// total counts the stored interactions.
func (e *joinEnv) total(t *testing.T) int {
	t.Helper()
	res, err := e.st.Search(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Total
}

func inum(t *testing.T, n uint64) callrec.INUM {
	t.Helper()
	x, err := callrec.NewINUM(7, n)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// event is a STOPPED event of recording n of task.
func event(t *testing.T, n uint64, task string) callrec.RecordingEvent {
	t.Helper()
	rec := callrec.Recording{INUM: inum(t, n), Node: 7, State: callrec.StateComplete, EndReason: callrec.EndStop,
		Stream: callrec.StreamInfo{StreamSID: "MZ" + task, CallSID: "CA" + task,
			CustomParameters: map[string]string{"task_sid": task, "agent": "alice", "team": "east"}},
		StartedAt: t0, StoppedAt: t0.Add(time.Minute), UpdatedAt: t0.Add(time.Minute)}
	return callrec.RecordingEvent{Type: callrec.RecordingStopped, At: rec.StoppedAt, Recording: rec}
}

func contact(task string) callrec.Contact {
	return callrec.Contact{TaskSID: task, AccountSID: "AC1", Status: callrec.ContactEnded, CustomerCall: "CA" + task,
		Direction: "inbound", From: "+15550001111", To: "+15551230000", QueueName: "sales", TaskVersion: 3,
		CreatedAt: t0.Add(-5 * time.Second), EndedAt: t0.Add(time.Minute),
		Connections: []callrec.Connection{{ReservationSID: "WR1", AgentExtension: "alice", Team: "east", Status: callrec.ConnEnded,
			Version: 2, Monitored: true, OfferedAt: t0.Add(-3 * time.Second), AnsweredAt: t0, EndedAt: t0.Add(time.Minute)}}}
}

func post(t *testing.T, srv *httptest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHandlerRefusesBadToken(t *testing.T) {
	e := newJoinEnv(t)
	srv := e.serve(t, token)
	open := e.serve(t, "") // no token configured: nobody gets in
	body := `{"task_sid":"WT1","status":"ended","connections":[]}`
	tests := []struct {
		name string
		srv  *httptest.Server
		auth string
	}{
		{"no Authorization", srv, ""},
		{"wrong token", srv, "Bearer wrong-token-0123456789"},
		{"token with a suffix", srv, "Bearer " + token + "x"},
		{"token prefix", srv, "Bearer " + token[:10]},
		{"basic auth", srv, "Basic " + token},
		{"empty bearer", srv, "Bearer "},
		{"server without a token, empty bearer", open, "Bearer "},
		{"server without a token, no header", open, ""},
	}
	for _, tt := range tests {
		for _, p := range []string{ingest.PathContacts, ingest.PathRecordingEvents} {
			status, b := post(t, tt.srv, http.MethodPost, p, tt.auth, body)
			if status != http.StatusUnauthorized || !strings.Contains(b, callrec.EUNAUTHENTICATED) {
				t.Errorf("%s: POST %s = %d %s, want 401", tt.name, p, status, b)
			}
		}
	}
	if n := e.total(t); n != 0 {
		t.Errorf("%d interactions stored by refused requests", n)
	}
}

func TestHandlerRefusesBadRequests(t *testing.T) {
	e := newJoinEnv(t)
	srv := e.serve(t, token)
	auth := "Bearer " + token
	big := `{"task_sid":"WT1","status":"ended","from":"` + strings.Repeat("9", 9<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"GET", http.MethodGet, ingest.PathContacts, "", http.StatusBadRequest, callrec.EINVALID},
		{"unknown path", http.MethodPost, "/api/ingest/calls", `{}`, http.StatusNotFound, callrec.ENOTFOUND},
		{"malformed contact", http.MethodPost, ingest.PathContacts, `{"task_sid": `, http.StatusBadRequest, callrec.EINVALID},
		{"malformed event", http.MethodPost, ingest.PathRecordingEvents, `[1,2]`, http.StatusBadRequest, callrec.EINVALID},
		{"empty body", http.MethodPost, ingest.PathRecordingEvents, ``, http.StatusBadRequest, callrec.EINVALID},
		{"wrong field type", http.MethodPost, ingest.PathContacts, `{"task_sid": 7}`, http.StatusBadRequest, callrec.EINVALID},
		{"contact without task", http.MethodPost, ingest.PathContacts, `{"status":"ended"}`, http.StatusBadRequest, callrec.EINVALID},
		{"event without INUM", http.MethodPost, ingest.PathRecordingEvents, `{"type":"STOPPED","recording":{"state":"complete"}}`, http.StatusBadRequest, callrec.EINVALID},
		{"body over 8 MiB", http.MethodPost, ingest.PathContacts, big, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tt := range tests {
		status, b := post(t, srv, tt.method, tt.path, auth, tt.body)
		if status != tt.status || !strings.Contains(b, tt.code) {
			t.Errorf("%s: %d %.100s, want %d %s", tt.name, status, b, tt.status, tt.code)
		}
	}
	if n := e.total(t); n != 0 {
		t.Errorf("%d interactions stored by refused requests", n)
	}
}

func TestHandlerPassesToJoiner(t *testing.T) {
	e := newJoinEnv(t)
	srv := e.serve(t, token)
	auth := "Bearer " + token
	ev := event(t, 1, "WTone")
	evJSON, ctJSON := mustJSON(t, ev), mustJSON(t, contact("WTone"))

	if status, b := post(t, srv, http.MethodPost, ingest.PathRecordingEvents, auth, evJSON); status != http.StatusNoContent {
		t.Fatalf("recording event: %d %s", status, b)
	}
	in, err := e.st.Get(context.Background(), "WTone")
	if err != nil {
		t.Fatalf("the event's interaction is not stored: %v", err)
	}
	if !cmp.Equal(in.INUMs, []callrec.INUM{ev.Recording.INUM}) || !cmp.Equal(in.Tags, []string{join.TagContactMissing}) {
		t.Errorf("after the event: INUMs %v, tags %v", in.INUMs, in.Tags)
	}

	if status, b := post(t, srv, http.MethodPost, ingest.PathContacts, auth, ctJSON); status != http.StatusNoContent {
		t.Fatalf("contact: %d %s", status, b)
	}
	in, err = e.st.Get(context.Background(), "WTone")
	if err != nil {
		t.Fatal(err)
	}
	if in.From != "+15550001111" || in.Queue != "sales" || !cmp.Equal(in.Agents, []string{"alice"}) || len(in.Tags) != 0 || in.Status != store.StatusComplete {
		t.Errorf("after the contact: %+v", in)
	}
	st, ok, err := e.j.Get("WTone")
	if err != nil || !ok || st.Contact == nil || st.Contact.TaskSID != "WTone" || len(st.Recordings) != 1 {
		t.Errorf("joined state = %+v, %v, %v", st, ok, err)
	}
	// At least once: a repeat is harmless.
	if status, _ := post(t, srv, http.MethodPost, ingest.PathRecordingEvents, auth, evJSON); status != http.StatusNoContent {
		t.Errorf("repeated event: %d", status)
	}
	if n := e.total(t); n != 1 {
		t.Errorf("%d interactions, want 1", n)
	}
}

func TestClientEndToEnd(t *testing.T) {
	e := newJoinEnv(t)
	srv := e.serve(t, token)
	ctx := context.Background()
	c := ingest.NewClient(srv.URL+"/", token)

	if err := c.Contact(ctx, contact("WTtwo")); err != nil {
		t.Fatalf("Contact: %v", err)
	}
	ev := event(t, 2, "WTtwo")
	if err := c.NotifyRecording(ctx, ev); err != nil {
		t.Fatalf("NotifyRecording: %v", err)
	}
	in, err := e.st.Get(ctx, "WTtwo")
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(in.INUMs, []callrec.INUM{ev.Recording.INUM}) || !cmp.Equal(in.Teams, []string{"east"}) || in.Status != store.StatusComplete || len(in.Segments) != 1 || !in.Segments[0].Recorded {
		t.Errorf("joined interaction = %+v", in)
	}

	// Errors keep their codes: the queue drops invalid events and retries the rest.
	bad := event(t, 3, "WTthree")
	bad.Recording.INUM = ""
	if err := c.NotifyRecording(ctx, bad); callrec.ErrorCode(err) != callrec.EINVALID {
		t.Errorf("invalid event: %v, want code %s", err, callrec.EINVALID)
	}
	if err := c.Contact(ctx, callrec.Contact{Status: callrec.ContactEnded}); callrec.ErrorCode(err) != callrec.EINVALID {
		t.Errorf("contact without task: %v, want code %s", err, callrec.EINVALID)
	}
	if err := ingest.NewClient(srv.URL, "wrong").Contact(ctx, contact("WTx")); callrec.ErrorCode(err) != callrec.EUNAUTHENTICATED {
		t.Errorf("wrong token: %v, want code %s", err, callrec.EUNAUTHENTICATED)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	if err := ingest.NewClient(down.URL, token).NotifyRecording(ctx, ev); callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("consolidation down: %v, want code %s", err, callrec.EUNAVAILABLE)
	}
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	t.Cleanup(html.Close)
	if err := ingest.NewClient(html.URL, token).NotifyRecording(ctx, ev); callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("proxy error page: %v, want code %s", err, callrec.EUNAVAILABLE)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.NotifyRecording(cctx, ev); err == nil {
		t.Error("NotifyRecording with a canceled context succeeded")
	}
	if _, ok, _ := e.j.Get("WTx"); ok {
		t.Error("refused contact was joined")
	}
}

// TestClientOversizeIsPermanent: an event the handler will never take (413)
// must come back as a permanent error. Any other code makes the Queue retry
// it forever, and the Queue delivers in order: every later recording event
// of that recorder would wait behind it.
func TestClientOversizeIsPermanent(t *testing.T) {
	e := newJoinEnv(t)
	srv := e.serve(t, token)
	ev := event(t, 4, "WTbig")
	ev.Recording.EndDetail = strings.Repeat("x", 9<<20)
	err := ingest.NewClient(srv.URL, token).NotifyRecording(context.Background(), ev)
	if err == nil {
		t.Fatal("an event over the size limit was taken")
	}
	if code := callrec.ErrorCode(err); code != callrec.EINVALID {
		t.Errorf("oversized event: error %q (code %s): the Queue retries it forever; want code %s so it is dropped", err, code, callrec.EINVALID)
	}
}

// notifier is a RecordingNotifier whose answers a test scripts.
type notifier struct {
	mu       sync.Mutex
	attempts []callrec.INUM
	answer   func(ev callrec.RecordingEvent, attempt int) error // attempt counts per INUM, from 0
	tries    map[callrec.INUM]int
	done     chan callrec.RecordingEvent // delivered events
}

func newNotifier(answer func(ev callrec.RecordingEvent, attempt int) error) *notifier {
	return newNotifierCap(100, answer)
}

// newNotifierCap is newNotifier with room for capacity delivered events.
func newNotifierCap(capacity int, answer func(ev callrec.RecordingEvent, attempt int) error) *notifier {
	return &notifier{answer: answer, tries: map[callrec.INUM]int{}, done: make(chan callrec.RecordingEvent, capacity)}
}

func (n *notifier) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	if err := ctx.Err(); err != nil { // as a real client fails
		return callrec.Errorf(callrec.EUNAVAILABLE, "consolidation: %v", err)
	}
	n.mu.Lock()
	n.attempts = append(n.attempts, ev.Recording.INUM)
	try := n.tries[ev.Recording.INUM]
	n.tries[ev.Recording.INUM]++
	n.mu.Unlock()
	if err := n.answer(ev, try); err != nil {
		return err
	}
	n.done <- ev
	return nil
}

func (n *notifier) attemptLog() []callrec.INUM {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]callrec.INUM(nil), n.attempts...)
}

// waitDelivered waits for the next delivered event.
func waitDelivered(t *testing.T, n *notifier) callrec.RecordingEvent {
	t.Helper()
	select {
	case ev := <-n.done:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no event delivered; attempts %v", n.attemptLog())
		return callrec.RecordingEvent{}
	}
}

func TestQueueRetriesUntilDelivered(t *testing.T) {
	const failures = 3
	first := inum(t, 1)
	n := newNotifier(func(ev callrec.RecordingEvent, attempt int) error {
		if ev.Recording.INUM == first && attempt < failures {
			return callrec.Errorf(callrec.EUNAVAILABLE, "consolidation restarting")
		}
		return nil
	})
	q := ingest.NewQueue(n, callrectest.Logger(t))
	defer q.Close(time.Second)
	ctx := context.Background()
	for _, i := range []uint64{1, 2} {
		if err := q.NotifyRecording(ctx, event(t, i, "WTq")); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitDelivered(t, n).Recording.INUM; got != inum(t, 1) {
		t.Errorf("first delivered %s, want %s", got, inum(t, 1))
	}
	if got := waitDelivered(t, n).Recording.INUM; got != inum(t, 2) {
		t.Errorf("second delivered %s, want %s", got, inum(t, 2))
	}
	want := []callrec.INUM{inum(t, 1), inum(t, 1), inum(t, 1), inum(t, 1), inum(t, 2)}
	if diff := cmp.Diff(want, n.attemptLog()); diff != "" {
		t.Errorf("attempts, in order (-want +got):\n%s", diff)
	}
}

func TestQueueDropsInvalid(t *testing.T) {
	first := inum(t, 1)
	n := newNotifier(func(ev callrec.RecordingEvent, attempt int) error {
		if ev.Recording.INUM == first {
			return callrec.Errorf(callrec.EINVALID, "consolidation: no task")
		}
		return nil
	})
	q := ingest.NewQueue(n, callrectest.Logger(t))
	defer q.Close(time.Second)
	for _, i := range []uint64{1, 2} {
		if err := q.NotifyRecording(context.Background(), event(t, i, "WTq")); err != nil {
			t.Fatal(err)
		}
	}
	if got := waitDelivered(t, n).Recording.INUM; got != inum(t, 2) {
		t.Errorf("delivered %s, want %s", got, inum(t, 2))
	}
	if diff := cmp.Diff([]callrec.INUM{inum(t, 1), inum(t, 2)}, n.attemptLog()); diff != "" {
		t.Errorf("attempts (-want +got): the invalid event must be tried once\n%s", diff)
	}
}

func TestQueueCloseDeliversQueued(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	first := inum(t, 1)
	n := newNotifier(func(ev callrec.RecordingEvent, attempt int) error {
		if ev.Recording.INUM == first {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	q := ingest.NewQueue(n, callrectest.Logger(t))
	for i := uint64(1); i <= 5; i++ {
		if err := q.NotifyRecording(context.Background(), event(t, i, "WTq")); err != nil {
			t.Fatal(err)
		}
	}
	<-entered // the first event is being delivered; four wait
	closed := make(chan struct{})
	go func() { q.Close(time.Minute); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with events still queued")
	default:
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	var got []callrec.INUM
	for range 5 {
		got = append(got, waitDelivered(t, n).Recording.INUM)
	}
	if diff := cmp.Diff([]callrec.INUM{inum(t, 1), inum(t, 2), inum(t, 3), inum(t, 4), inum(t, 5)}, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestQueueCloseGiveUpAfterGrace(t *testing.T) {
	n := newNotifier(func(ev callrec.RecordingEvent, attempt int) error {
		return callrec.Errorf(callrec.EUNAVAILABLE, "consolidation down")
	})
	q := ingest.NewQueue(n, callrectest.Logger(t))
	if err := q.NotifyRecording(context.Background(), event(t, 1, "WTq")); err != nil {
		t.Fatal(err)
	}
	callrectest.Eventually(t, 5*time.Second, "a first attempt", func() bool { return len(n.attemptLog()) > 0 })
	closed := make(chan struct{})
	start := time.Now()
	go func() { q.Close(50 * time.Millisecond); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not give up after its grace period")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a 50 ms grace", d)
	}
	attempts := len(n.attemptLog())
	if len(n.done) != 0 {
		t.Error("an event was delivered by an always-failing notifier")
	}
	// Nothing runs after Close.
	if got := len(n.attemptLog()); got != attempts {
		t.Errorf("attempts went on after Close: %d then %d", attempts, got)
	}
}

func TestQueueFull(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	first := inum(t, 1)
	n := newNotifierCap(ingest.QueueSize+1, func(ev callrec.RecordingEvent, attempt int) error {
		if ev.Recording.INUM == first {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	q := ingest.NewQueue(n, callrectest.Logger(t))
	ctx := context.Background()
	ev := event(t, 1, "WTq")
	if err := q.NotifyRecording(ctx, ev); err != nil {
		t.Fatal(err)
	}
	<-entered
	other := event(t, 2, "WTq")
	for i := range ingest.QueueSize {
		if err := q.NotifyRecording(ctx, other); err != nil {
			t.Fatalf("event %d of %d: %v", i+1, ingest.QueueSize, err)
		}
	}
	if err := q.NotifyRecording(ctx, other); callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("event past QueueSize: %v, want code %s", err, callrec.EUNAVAILABLE)
	}
	close(release)
	q.Close(time.Minute)
	if got := len(n.done); got != ingest.QueueSize+1 {
		t.Errorf("Close delivered %d events, want the %d queued", got, ingest.QueueSize+1)
	}
}

// TestQueueToHandler: recorder → Queue → Client → Handler → Joiner, with
// consolidation refusing at first.
func TestQueueToHandler(t *testing.T) {
	e := newJoinEnv(t)
	var up atomic.Bool
	h := &ingest.Handler{Token: token, Joiner: e.j}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	q := ingest.NewQueue(ingest.NewClient(srv.URL, token), callrectest.Logger(t))
	defer q.Close(time.Second)
	ev := event(t, 9, "WTqueued")
	if err := q.NotifyRecording(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	up.Store(true)
	callrectest.Eventually(t, 10*time.Second, "the queued event to be joined", func() bool {
		_, err := e.st.Get(context.Background(), "WTqueued")
		return err == nil
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
