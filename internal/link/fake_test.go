package link_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/internal/link"
)

// waitTimeout bounds every wait of these tests: long enough for -race on a
// loaded machine, short enough to fail instead of hanging.
const waitTimeout = 20 * time.Second

// eventually polls cond until it holds or waitTimeout passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a stand-in for the condition
	}
}

// recv waits for a value on ch.
func recv[T any](tb testing.TB, what string, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitDone waits for a stream to finish.
func waitDone(tb testing.TB, s *link.Stream) {
	tb.Helper()
	select {
	case <-s.Done():
	case <-time.After(waitTimeout):
		tb.Fatalf("stream %d not done", s.ID())
	}
}

// gotRec is one record as a sink received it. Payloads are copied.
type gotRec struct {
	Kind  byte // 'F', 'N', 'C'
	Seq   uint64
	Frame callrec.Frame
	Note  *link.Note
	Close *link.Close
	Gen   int // which OpenStream of the key attached the replier it came over (1 = first)
}

func frameRec(f *callrec.Frame) gotRec {
	g := gotRec{Kind: 'F', Seq: f.Seq, Frame: *f}
	g.Frame.Payload = append([]byte(nil), f.Payload...)
	return g
}

func noteRec(seq uint64, n link.Note) gotRec   { return gotRec{Kind: 'N', Seq: seq, Note: &n} }
func closeRec(seq uint64, c link.Close) gotRec { return gotRec{Kind: 'C', Seq: seq, Close: &c} }

// fakeHandler is a link.Handler that keeps one fakeSink per StreamKey and
// records every OpenStream call. A re-open of a known key (the adapter came
// back) returns the existing sink with LastSeq = the highest seq it holds,
// after the previous connection has detached it, so that the old
// connection's read loop cannot deliver anything after LastSeq is taken.
type fakeHandler struct {
	node    uint16
	autoAck bool // sinks ack every record as it arrives

	// onOpen, if set, runs at the start of every OpenStream; a non-nil error
	// fails the open.
	onOpen func(key link.StreamKey, req link.OpenRequest, r *link.Replier) error

	mu      sync.Mutex
	counter uint64
	sinks   map[link.StreamKey]*fakeSink
	order   []*fakeSink // in creation order
	opens   []openCall
	changed chan struct{}
}

type openCall struct {
	Key link.StreamKey
	Req link.OpenRequest
}

// testNode is the recorder node id of the test servers.
const testNode = 7

func newFakeHandler(autoAck bool) *fakeHandler {
	return &fakeHandler{node: testNode, autoAck: autoAck, sinks: map[link.StreamKey]*fakeSink{}, changed: make(chan struct{})}
}

func (h *fakeHandler) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *fakeHandler) OpenStream(ctx context.Context, key link.StreamKey, req link.OpenRequest, r *link.Replier) (link.StreamSink, link.OpenReply, error) {
	if h.onOpen != nil {
		if err := h.onOpen(key, req, r); err != nil {
			return nil, link.OpenReply{}, err
		}
	}
	h.mu.Lock()
	h.opens = append(h.opens, openCall{Key: key, Req: req})
	s := h.sinks[key]
	if s == nil {
		h.counter++
		inum, err := callrec.NewINUM(h.node, h.counter)
		if err != nil {
			h.mu.Unlock()
			return nil, link.OpenReply{}, err
		}
		s = &fakeSink{key: key, inum: inum, info: req.Info, autoAck: h.autoAck, replier: r, gen: 1, changed: make(chan struct{})}
		h.sinks[key] = s
		h.order = append(h.order, s)
		h.notifyLocked()
		h.mu.Unlock()
		return s, link.OpenReply{INUM: inum}, nil
	}
	h.notifyLocked()
	h.mu.Unlock()

	// Resume: wait until the old connection has let go of the sink.
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := s.wait(ctx, func(s *fakeSink) bool { return s.replier == nil }); err != nil {
		return nil, link.OpenReply{}, fmt.Errorf("resume %v: old connection never detached: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replier = r
	s.gen++
	s.notifyLocked()
	return s, link.OpenReply{INUM: s.inum, LastSeq: s.last, Resumed: true}, nil
}

// Opens returns the OpenStream calls so far.
func (h *fakeHandler) Opens() []openCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]openCall(nil), h.opens...)
}

// waitOpens waits for at least n OpenStream calls and returns them.
func (h *fakeHandler) waitOpens(tb testing.TB, n int) []openCall {
	tb.Helper()
	timeout := time.After(waitTimeout)
	for {
		h.mu.Lock()
		if len(h.opens) >= n {
			opens := append([]openCall(nil), h.opens...)
			h.mu.Unlock()
			return opens
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			tb.Fatalf("timed out waiting for %d opens", n)
		}
	}
}

// waitSink waits for the sink of key.
func (h *fakeHandler) waitSink(tb testing.TB, key link.StreamKey) *fakeSink {
	tb.Helper()
	timeout := time.After(waitTimeout)
	for {
		h.mu.Lock()
		s := h.sinks[key]
		ch := h.changed
		h.mu.Unlock()
		if s != nil {
			return s
		}
		select {
		case <-ch:
		case <-timeout:
			tb.Fatalf("timed out waiting for sink %v", key)
		}
	}
}

// fakeSink records everything it receives.
type fakeSink struct {
	key     link.StreamKey
	inum    callrec.INUM
	info    callrec.StreamInfo
	autoAck bool

	// gate, if set, is called (without the lock) before a frame is recorded;
	// it may block to stall the connection's read loop.
	gate atomic.Pointer[func(f *callrec.Frame)]

	mu       sync.Mutex
	replier  *link.Replier // nil while detached
	gen      int
	recs     []gotRec
	last     uint64
	detaches int
	changed  chan struct{}
}

var _ link.StreamSink = (*fakeSink)(nil)

func (s *fakeSink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSink) add(g gotRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.Gen = s.gen
	s.recs = append(s.recs, g)
	s.last = g.Seq
	if s.autoAck && s.replier != nil {
		s.replier.Ack(g.Seq)
	}
	s.notifyLocked()
}

func (s *fakeSink) Frame(f *callrec.Frame) {
	if g := s.gate.Load(); g != nil {
		(*g)(f)
	}
	s.add(frameRec(f))
}

func (s *fakeSink) Note(seq uint64, n link.Note)   { s.add(noteRec(seq, n)) }
func (s *fakeSink) Close(seq uint64, c link.Close) { s.add(closeRec(seq, c)) }

func (s *fakeSink) Detach(r *link.Replier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detaches++
	if s.replier == r {
		s.replier = nil
	}
	s.notifyLocked()
}

// Records returns a copy of what the sink received.
func (s *fakeSink) Records() []gotRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gotRec(nil), s.recs...)
}

// Last returns the highest seq received.
func (s *fakeSink) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *fakeSink) currentReplier() *link.Replier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replier
}

// Ack acknowledges up to seq over the current connection.
func (s *fakeSink) Ack(tb testing.TB, seq uint64) {
	tb.Helper()
	r := s.currentReplier()
	if r == nil {
		tb.Fatalf("sink %v: ack %d while detached", s.key, seq)
	}
	r.Ack(seq)
}

// Closed reports the finished recording to the adapter.
func (s *fakeSink) Closed(tb testing.TB, reply link.CloseReply) {
	tb.Helper()
	r := s.currentReplier()
	if r == nil {
		tb.Fatalf("sink %v: closed while detached", s.key)
	}
	r.Closed(reply)
}

// wait blocks until cond (called with s.mu held) holds or ctx is done.
func (s *fakeSink) wait(ctx context.Context, cond func(s *fakeSink) bool) error {
	for {
		s.mu.Lock()
		ok := cond(s)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitFor fails the test if cond does not come to hold.
func (s *fakeSink) waitFor(tb testing.TB, what string, cond func(s *fakeSink) bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.wait(ctx, cond); err != nil {
		s.mu.Lock()
		n, last := len(s.recs), s.last
		s.mu.Unlock()
		tb.Fatalf("sink %v: timed out waiting for %s (have %d records, last seq %d)", s.key, what, n, last)
	}
}

// waitSeq waits until the sink holds seq.
func (s *fakeSink) waitSeq(tb testing.TB, seq uint64) {
	tb.Helper()
	s.waitFor(tb, fmt.Sprintf("seq %d", seq), func(s *fakeSink) bool { return s.last >= seq })
}

// diffRecords compares records and reports the first difference only, so a
// failure in a 1000-record stream stays readable.
func diffRecords(want, got []gotRec) error {
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		w.Gen, g.Gen = 0, 0
		if sameRecord(w, g) {
			continue // fast path: cmp walks payloads byte by byte
		}
		if d := cmp.Diff(w, g); d != "" {
			return fmt.Errorf("record %d (seq %d) differs (-want +got):\n%s", i, want[i].Seq, d)
		}
	}
	if len(want) != len(got) {
		return fmt.Errorf("got %d records, want %d", len(got), len(want))
	}
	return nil
}

func sameRecord(a, b gotRec) bool {
	fa, fb := a.Frame, b.Frame
	return a.Kind == b.Kind && a.Seq == b.Seq && a.Gen == b.Gen &&
		fa.Seq == fb.Seq && fa.Track == fb.Track && fa.Chunk == fb.Chunk && fa.TimestampMS == fb.TimestampMS &&
		fa.TwilioSeq == fb.TwilioSeq && bytes.Equal(fa.Payload, fb.Payload) && (fa.Payload == nil) == (fb.Payload == nil) &&
		cmp.Equal(a.Note, b.Note) && cmp.Equal(a.Close, b.Close)
}

// checkConsecutive reports a duplicate or a gap in the sink's seqs.
func checkConsecutive(recs []gotRec) error {
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			return fmt.Errorf("record %d has seq %d, want %d (duplicate or gap)", i, r.Seq, i+1)
		}
	}
	return nil
}

// ---- harness: a Server and a Client joined by net.Pipe or TCP ----

type transport int

const (
	overPipe transport = iota
	overTCP
)

func (tr transport) String() string {
	if tr == overTCP {
		return "tcp"
	}
	return "pipe"
}

type harness struct {
	srv    *link.Server
	client *link.Client

	dials atomic.Int32

	mu    sync.Mutex
	conns []net.Conn // server ends, in order
}

// trackingListener records the connections it accepts.
type trackingListener struct {
	net.Listener
	hs *harness
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.hs.mu.Lock()
		l.hs.conns = append(l.hs.conns, c)
		l.hs.mu.Unlock()
	}
	return c, err
}

// newHarness starts a Server for h and a running Client connected to it.
// Everything is stopped, and waited for, in t.Cleanup.
func newHarness(t testing.TB, tr transport, h link.Handler, cfg link.ClientConfig) *harness {
	t.Helper()
	hs := &harness{srv: link.NewServer(h, testNode, nil)}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	var srvWG sync.WaitGroup
	switch tr {
	case overPipe:
		cfg.Dial = func(ctx context.Context) (net.Conn, error) {
			hs.dials.Add(1)
			a, b := net.Pipe()
			hs.mu.Lock()
			hs.conns = append(hs.conns, b)
			hs.mu.Unlock()
			srvWG.Go(func() { _ = hs.srv.ServeConn(srvCtx, b) })
			return a, nil
		}
	case overTCP:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serveErr := make(chan error, 1)
		srvWG.Go(func() { serveErr <- hs.srv.Serve(srvCtx, trackingListener{ln, hs}) })
		t.Cleanup(func() {
			if err := <-serveErr; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		var d net.Dialer
		addr := ln.Addr().String()
		cfg.Dial = func(ctx context.Context) (net.Conn, error) {
			hs.dials.Add(1)
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if cfg.AdapterID == "" {
		cfg.AdapterID = "adapter-test"
	}
	hs.client = link.NewClient(cfg)
	runCtx, stopRun := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- hs.client.Run(runCtx) }()
	t.Cleanup(func() {
		stopRun()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Client.Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Client.Run did not return after cancel")
		}
		stopSrv()
		srvWG.Wait()
	})
	return hs
}

// serverConn returns the i-th server-side connection (0-based), waiting for it.
func (hs *harness) serverConn(tb testing.TB, i int) net.Conn {
	tb.Helper()
	var c net.Conn
	eventually(tb, fmt.Sprintf("server connection %d", i), func() bool {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		if len(hs.conns) > i {
			c = hs.conns[i]
			return true
		}
		return false
	})
	return c
}

func key(adapter string, id uint32) link.StreamKey { return link.StreamKey{Adapter: adapter, ID: id} }

var errTest = errors.New("test error")
