package link_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/internal/link"
)

func streamInfo(i int) callrec.StreamInfo {
	return callrec.StreamInfo{
		StreamSID:        fmt.Sprintf("MZ%032d", i),
		CallSID:          fmt.Sprintf("CA%032d", i),
		AccountSID:       "AC0123",
		Tracks:           []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound},
		TrackNames:       []string{"inbound", "outbound"},
		CustomParameters: map[string]string{"agent": fmt.Sprint(i)},
		Encoding:         "audio/x-mulaw",
		SampleRate:       callrec.SampleRate,
		Channels:         1,
		StartedAt:        time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC),
		Adapter:          "adapter-test",
		Remote:           "10.0.0.1:443",
	}
}

// onTheWire is what the recorder sees of an info: Tracks is not sent
// (TrackNames is).
func onTheWire(info callrec.StreamInfo) callrec.StreamInfo {
	info.Tracks = nil
	return info
}

// producer generates one stream's frames deterministically and keeps what
// the sink must receive.
type producer struct {
	s     *link.Stream
	rng   *rand.Rand
	chunk [callrec.NumTracks]uint32
	n     int
	want  []gotRec
}

func newProducer(s *link.Stream, seed uint64) *producer {
	return &producer{s: s, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// frame queues one frame of size bytes on a random track; it reports
// whether the stream accepted it.
func (p *producer) frame(tb testing.TB, size int) bool {
	tb.Helper()
	tr := callrec.Track(p.rng.IntN(callrec.NumTracks))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(p.rng.Uint32())
	}
	p.n++
	p.chunk[tr]++
	f := &callrec.Frame{Track: tr, Chunk: p.chunk[tr], TimestampMS: p.chunk[tr] * 20, TwilioSeq: uint64(p.n + 1), Payload: payload}
	if !p.s.Frame(f) {
		return false
	}
	if want := uint64(len(p.want) + 1); f.Seq != want {
		tb.Errorf("stream %d: Frame assigned seq %d, want %d", p.s.ID(), f.Seq, want)
	}
	p.want = append(p.want, frameRec(f))
	return true
}

func (p *producer) note(n link.Note) {
	p.s.Note(n)
	p.want = append(p.want, noteRec(uint64(len(p.want)+1), n))
}

func (p *producer) close(c link.Close) {
	p.s.Close(c)
	p.want = append(p.want, closeRec(uint64(len(p.want)+1), c))
}

// variedSize returns payload sizes from 1 to MaxFramePayload, mostly small.
func (p *producer) variedSize(j int) int {
	switch {
	case j == 0:
		return 1
	case j%100 == 50:
		return callrec.MaxFramePayload
	case j%13 == 0:
		return 1 + p.rng.IntN(callrec.MaxFramePayload)
	default:
		return 1 + p.rng.IntN(320)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tr := range []transport{overPipe, overTCP} {
		t.Run(tr.String(), func(t *testing.T) { testRoundTrip(t, tr) })
	}
}

func testRoundTrip(t *testing.T, tr transport) {
	const streams, frames = 50, 1000
	h := newFakeHandler(true)
	hs := newHarness(t, tr, h, link.ClientConfig{AdapterID: "rt"})
	at := time.Date(2025, 3, 4, 5, 6, 8, 0, time.UTC)

	producers := make([]*producer, streams)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() { // one goroutine per stream, as the adapter's read loops
			<-start
			p := newProducer(hs.client.Open(streamInfo(i)), uint64(i))
			producers[i] = p
			for j := range frames {
				if !p.frame(t, p.variedSize(j)) {
					t.Errorf("stream %d: frame %d dropped", i, j)
					return
				}
				if j == frames/2 {
					p.note(link.Note{StreamError: callrec.StreamError{At: at, Kind: callrec.ErrKindBadPayload, Detail: fmt.Sprintf("note of %d", i)},
						Track: "outbound", FromChunk: 3, ToChunk: 9, Frames: 7})
				}
				if j%64 == 0 {
					runtime.Gosched() // let the streams interleave even on few CPUs
				}
			}
			p.close(link.Close{Reason: callrec.EndStop, Detail: fmt.Sprint("stream ", i), StopSeq: frames + 2})
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	for i, p := range producers {
		sink := h.waitSink(t, key("rt", p.s.ID()))
		sink.waitSeq(t, uint64(len(p.want)))
		got := sink.Records()
		if err := diffRecords(p.want, got); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if diff := cmp.Diff(onTheWire(streamInfo(i)), sink.info); diff != "" {
			t.Errorf("stream %d: OpenRequest.Info differs (-want +got):\n%s", i, diff)
		}
		eventually(t, "INUM", func() bool { return p.s.INUM() == sink.inum })
		// The sink acked every record as it came; the adapter releases them all.
		eventually(t, "retained bytes released", func() bool { return p.s.Retained() == 0 })
		if got, want := p.s.Acked(), uint64(len(p.want)); got != want {
			t.Errorf("stream %d: Acked() = %d, want %d", i, got, want)
		}
		select {
		case <-p.s.Done():
			t.Fatalf("stream %d done before the recorder closed it", i)
		default:
		}
		reply := link.CloseReply{INUM: sink.inum, State: callrec.StateComplete, Seq: uint64(len(p.want))}
		sink.Closed(t, reply)
		waitDone(t, p.s)
		r, err := p.s.Result()
		if err != nil || r == nil {
			t.Fatalf("stream %d: Result() = %v, %v", i, r, err)
		}
		if diff := cmp.Diff(reply, *r); diff != "" {
			t.Errorf("stream %d: CloseReply (-want +got):\n%s", i, diff)
		}
		if p.s.Frame(&callrec.Frame{Payload: []byte{1}}) {
			t.Errorf("stream %d: Frame accepted after the stream finished", i)
		}
	}
	for _, o := range h.Opens() {
		if o.Req.Resume != nil {
			t.Errorf("stream %v opened with Resume %+v without any reconnect", o.Key, *o.Req.Resume)
		}
	}
	if n := len(h.Opens()); n != streams {
		t.Errorf("%d opens, want %d", n, streams)
	}
	st := &hs.client.Stats
	if a, r, sa, q, d := hs.client.Active(), st.RetainedBytes.Load(), st.StreamsActive.Load(), st.FramesQueued.Load(), st.FramesDropped.Load(); a != 0 || r != 0 || sa != 0 || q != streams*frames || d != 0 {
		t.Errorf("Active %d, RetainedBytes %d, StreamsActive %d, FramesQueued %d, FramesDropped %d; want 0, 0, 0, %d, 0", a, r, sa, q, d, streams*frames)
	}
	if n := st.Reconnects.Load(); n != 0 {
		t.Errorf("%d reconnects on a healthy link", n)
	}
}

// TestRetentionBudget: a recorder that does not acknowledge makes the stream
// drop frames past RetainBytes; once it acknowledges, the drops are reported
// as one overflow note per track, just before the next frame.
func TestRetentionBudget(t *testing.T) {
	const budget = 2000
	h := newFakeHandler(false)
	hs := newHarness(t, overPipe, h, link.ClientConfig{AdapterID: "rb", RetainBytes: budget})
	s := hs.client.Open(streamInfo(1))
	sink := h.waitSink(t, key("rb", s.ID()))
	eventually(t, "INUM", func() bool { return s.INUM() == sink.inum })

	var want []gotRec
	var chunk [callrec.NumTracks]uint32
	var twilioSeq uint64
	var dropped int64
	frame := func(tr callrec.Track) (*callrec.Frame, bool) {
		chunk[tr]++
		twilioSeq++
		f := &callrec.Frame{Track: tr, Chunk: chunk[tr], TimestampMS: chunk[tr] * 20, TwilioSeq: twilioSeq, Payload: make([]byte, 160)}
		for i := range f.Payload {
			f.Payload[i] = byte(twilioSeq) + byte(i)
		}
		return f, s.Frame(f)
	}
	type run struct {
		from, to uint32
		n        int64
	}
	// fill sends frames on alternating tracks until the budget is exhausted
	// and then extra more, which must all be dropped; it returns the drop
	// runs per track.
	fill := func(round, extra int) [callrec.NumTracks]run {
		var runs [callrec.NumTracks]run
		accepted := 0
		for i := 0; ; i++ {
			f, ok := frame(callrec.Track(i % 2))
			if ok {
				if runs[0].n+runs[1].n > 0 {
					t.Fatalf("round %d: frame %d accepted after an earlier one was dropped with no ack in between", round, i)
				}
				accepted++
				want = append(want, frameRec(f))
				if r := s.Retained(); r > budget {
					t.Fatalf("round %d: Retained() = %d > RetainBytes %d", round, r, budget)
				}
				if i > 100 {
					t.Fatalf("round %d: 100 frames of 160 bytes accepted with RetainBytes %d", round, budget)
				}
				continue
			}
			r := &runs[f.Track]
			if r.n == 0 {
				r.from = f.Chunk
			}
			r.to = f.Chunk
			r.n++
			dropped++
			if got := s.Dropped(); got != dropped {
				t.Fatalf("round %d: Dropped() = %d, want %d", round, got, dropped)
			}
			if runs[0].n+runs[1].n == int64(extra) {
				break
			}
		}
		if accepted == 0 && round == 0 {
			t.Fatalf("no frame fit in RetainBytes %d", budget)
		}
		return runs
	}
	expectNotes := func(runs [callrec.NumTracks]run) {
		for tr, r := range runs {
			if r.n == 0 {
				continue
			}
			want = append(want, noteRec(uint64(len(want)+1), link.Note{
				StreamError: callrec.StreamError{Kind: callrec.ErrKindOverflow},
				Track:       callrec.Track(tr).String(), FromChunk: r.from, ToChunk: r.to, Frames: r.n,
			}))
		}
	}
	check := func(round int) {
		t.Helper()
		sink.waitSeq(t, uint64(len(want)))
		got := sink.Records()
		for i := range got {
			if n := got[i].Note; n != nil && n.Kind == callrec.ErrKindOverflow {
				if n.At.IsZero() || n.Detail == "" {
					t.Errorf("round %d: overflow note %+v without time or detail", round, *n)
				}
				c := *n
				c.At, c.Detail = time.Time{}, ""
				got[i].Note = &c
			}
		}
		if err := diffRecords(want, got); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	ackAll := func() {
		last := uint64(len(want))
		sink.Ack(t, last)
		eventually(t, "ack processed", func() bool { return s.Acked() == last && s.Retained() == 0 })
	}

	// Round 0: drops on both tracks, then an ack makes room.
	runs := fill(0, 7)
	if runs[0].n == 0 || runs[1].n == 0 {
		t.Fatalf("drops not on both tracks: %+v", runs)
	}
	check(0) // every accepted frame reached the recorder, nothing else
	if got := hs.client.Stats.FramesDropped.Load(); got != dropped {
		t.Errorf("Stats.FramesDropped = %d, want %d", got, dropped)
	}
	ackAll()
	expectNotes(runs)
	f, ok := frame(callrec.TrackOutbound)
	if !ok {
		t.Fatal("frame dropped after the recorder acknowledged everything")
	}
	want = append(want, frameRec(f))
	check(0)

	// Round 1: the drop runs start afresh (and the note of round 0 counted
	// against the budget: it is still unacknowledged).
	runs = fill(1, 5)
	check(1)
	ackAll()
	expectNotes(runs)
	if f, ok = frame(callrec.TrackInbound); !ok {
		t.Fatal("frame dropped after the recorder acknowledged everything")
	}
	want = append(want, frameRec(f))
	check(1)

	// Round 2: Close reports pending drops even without room.
	runs = fill(2, 3)
	expectNotes(runs)
	cl := link.Close{Reason: callrec.EndSocketClosed}
	s.Close(cl)
	want = append(want, closeRec(uint64(len(want)+1), cl))
	check(2)
	if got := s.Dropped(); got != dropped {
		t.Errorf("Dropped() = %d, want %d", got, dropped)
	}
	ackAll()
	sink.Closed(t, link.CloseReply{INUM: sink.inum, State: callrec.StateInterrupted, Seq: uint64(len(want))})
	waitDone(t, s)
	if _, err := s.Result(); err != nil {
		t.Fatal(err)
	}
}

func TestReconnectReplay(t *testing.T) {
	for _, tr := range []transport{overPipe, overTCP} {
		t.Run(tr.String(), func(t *testing.T) { testReconnectReplay(t, tr) })
	}
}

// testReconnectReplay breaks the connection while the recorder holds
// acknowledged, received-but-unacknowledged and not-yet-received records of
// several streams, and checks that after the reconnect every sink has every
// record exactly once.
func testReconnectReplay(t *testing.T, tr transport) {
	const (
		streams = 3
		acked   = 60  // acknowledged before the break
		phase1  = 100 // received before the break
		stallAt = 120 // stream 0's sink stalls the connection here
		phase2  = 200 // sent before the break
		phase3  = 250 // sent after the reconnect
	)
	h := newFakeHandler(false)
	hs := newHarness(t, tr, h, link.ClientConfig{AdapterID: "rc", RetainBytes: 2 << 20})
	ps := make([]*producer, streams)
	sinks := make([]*fakeSink, streams)
	for i := range ps {
		ps[i] = newProducer(hs.client.Open(streamInfo(i)), uint64(100+i))
		sinks[i] = h.waitSink(t, key("rc", ps[i].s.ID()))
	}
	for ps[0].n < phase1 {
		for _, p := range ps {
			if !p.frame(t, 1000) {
				t.Fatal("frame dropped")
			}
		}
	}
	for i, p := range ps {
		sinks[i].waitSeq(t, phase1)
		sinks[i].Ack(t, acked)
		eventually(t, "ack", func() bool { return p.s.Acked() == acked })
		eventually(t, "INUM", func() bool { return p.s.INUM() == sinks[i].inum })
	}

	// Stall the recorder's read loop inside stream 0's sink, with big frames
	// queued behind it, then break the connection under it.
	stalled, release := make(chan struct{}), make(chan struct{})
	gate := func(f *callrec.Frame) {
		if f.Seq == stallAt {
			close(stalled)
			select {
			case <-release:
			case <-time.After(waitTimeout):
			}
		}
	}
	sinks[0].gate.Store(&gate)
	for ps[0].n < phase2 {
		for _, p := range ps {
			if !p.frame(t, callrec.MaxFramePayload) {
				t.Fatal("frame dropped")
			}
		}
	}
	recv(t, "stall", stalled)
	if err := hs.serverConn(t, 0).Close(); err != nil {
		t.Fatal(err)
	}
	close(release)

	opens := h.waitOpens(t, 2*streams)
	for ps[0].n < phase3 {
		for _, p := range ps {
			if !p.frame(t, 1+p.rng.IntN(callrec.MaxFramePayload)) {
				t.Fatal("frame dropped")
			}
		}
	}
	for i, p := range ps {
		p.close(link.Close{Reason: callrec.EndStop, StopSeq: phase3 + 1})
		sinks[i].waitSeq(t, uint64(len(p.want)))
	}

	for i, p := range ps {
		got := sinks[i].Records()
		if err := checkConsecutive(got); err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
		if err := diffRecords(p.want, got); err != nil {
			t.Errorf("stream %d: %v", i, err)
		}
		if i == 0 {
			// The stalled connection delivered up to stallAt and perhaps what
			// it had buffered, but not all the big frames behind: the rest
			// came again over the new connection.
			firstReplayed := uint64(0)
			for _, r := range got {
				if r.Gen == 2 {
					firstReplayed = r.Seq
					break
				}
			}
			if firstReplayed <= stallAt || firstReplayed > phase2 {
				t.Errorf("stream 0: first record over the new connection is seq %d, want one sent before the break (%d..%d)", firstReplayed, stallAt+1, phase2)
			}
		}
	}
	for i, o := range opens {
		if i < streams {
			if o.Req.Resume != nil {
				t.Errorf("first open of %v has Resume %+v", o.Key, *o.Req.Resume)
			}
			continue
		}
		sink := h.waitSink(t, o.Key)
		want := &link.Resume{INUM: sink.inum, AckedSeq: acked}
		if diff := cmp.Diff(want, o.Req.Resume); diff != "" {
			t.Errorf("re-open of %v: Resume (-want +got):\n%s", o.Key, diff)
		}
		if diff := cmp.Diff(onTheWire(streamInfo(int(o.Key.ID-1))), o.Req.Info); diff != "" {
			t.Errorf("re-open of %v: Info (-want +got):\n%s", o.Key, diff)
		}
	}
	if len(h.Opens()) != 2*streams {
		t.Errorf("%d opens, want %d", len(h.Opens()), 2*streams)
	}
	if n := hs.client.Stats.Reconnects.Load(); n < 1 {
		t.Errorf("Stats.Reconnects = %d", n)
	}
	for i, p := range ps {
		last := uint64(len(p.want))
		sinks[i].Ack(t, last)
		eventually(t, "final ack", func() bool { return p.s.Retained() == 0 && p.s.Acked() == last })
		reply := link.CloseReply{INUM: sinks[i].inum, State: callrec.StateComplete, Seq: last}
		sinks[i].Closed(t, reply)
		waitDone(t, p.s)
		if r, err := p.s.Result(); err != nil || !cmp.Equal(*r, reply) {
			t.Errorf("stream %d: Result() = %+v, %v; want %+v", i, r, err, reply)
		}
	}
	if r := hs.client.Stats.RetainedBytes.Load(); r != 0 {
		t.Errorf("Stats.RetainedBytes = %d after every stream finished", r)
	}
}

// TestReopenAfterLostOpened: the connection breaks after the recorder got
// OPEN (and records) but before OPENED reached the adapter. The re-open is
// a resume all the same, and nothing is delivered twice.
func TestReopenAfterLostOpened(t *testing.T) {
	h := newFakeHandler(false)
	var hs *harness
	var once sync.Once
	h.onOpen = func(link.StreamKey, link.OpenRequest, *link.Replier) error {
		once.Do(func() {
			hs.mu.Lock()
			c := hs.conns[0]
			hs.mu.Unlock()
			c.Close() // OPENED will not get out
		})
		return nil
	}
	hs = newHarness(t, overPipe, h, link.ClientConfig{AdapterID: "lo"})
	p := newProducer(hs.client.Open(streamInfo(3)), 3)
	for range 20 {
		p.frame(t, 160)
	}
	opens := h.waitOpens(t, 2)
	for range 20 {
		p.frame(t, 160)
	}
	p.close(link.Close{Reason: callrec.EndStop})
	sink := h.waitSink(t, key("lo", p.s.ID()))
	sink.waitSeq(t, uint64(len(p.want)))
	if err := diffRecords(p.want, sink.Records()); err != nil {
		t.Error(err)
	}
	if opens[1].Req.Resume == nil {
		t.Errorf("stream re-opened after a dropped connection without Resume")
	} else if diff := cmp.Diff(link.Resume{}, *opens[1].Req.Resume); diff != "" {
		t.Errorf("Resume (-want +got):\n%s", diff)
	}
	eventually(t, "INUM", func() bool { return p.s.INUM() == sink.inum })
}

// TestOpenFailed: a handler error fails the stream on the adapter side.
func TestOpenFailed(t *testing.T) {
	h := newFakeHandler(false)
	h.onOpen = func(link.StreamKey, link.OpenRequest, *link.Replier) error { return errTest }
	hs := newHarness(t, overPipe, h, link.ClientConfig{AdapterID: "of"})
	s := hs.client.Open(streamInfo(1))
	s.Frame(&callrec.Frame{Chunk: 1, Payload: []byte{1, 2, 3}})
	waitDone(t, s)
	if r, err := s.Result(); r != nil || err == nil || !strings.Contains(err.Error(), errTest.Error()) {
		t.Errorf("Result() = %v, %v; want the handler's error", r, err)
	}
	if s.Frame(&callrec.Frame{Chunk: 2, Payload: []byte{1}}) {
		t.Error("Frame accepted on a failed stream")
	}
	st := &hs.client.Stats
	if st.StreamsFailed.Load() != 1 || st.StreamsActive.Load() != 0 || st.RetainedBytes.Load() != 0 || hs.client.Active() != 0 {
		t.Errorf("stats after a failed open: failed %d, active %d, retained %d, Active() %d",
			st.StreamsFailed.Load(), st.StreamsActive.Load(), st.RetainedBytes.Load(), hs.client.Active())
	}
}

// pipeServer runs ServeConn for every Dial of a Client; stop waits for them.
type pipeServer struct {
	srv *link.Server
	ctx context.Context
	wg  sync.WaitGroup
}

func (ps *pipeServer) dial(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	ps.wg.Go(func() { _ = ps.srv.ServeConn(ps.ctx, b) })
	return a, nil
}

// TestRunCancel: Run returns when its context is cancelled, streams still
// open finish with ErrClientClosed, and no goroutine is left behind.
func TestRunCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("connected", testRunCancelConnected)
	t.Run("stalled-handshake", testRunCancelStalledHandshake)
	t.Run("dial-failing", testRunCancelDialFailing)
	var now int
	eventually(t, "goroutines to end", func() bool {
		now = runtime.NumGoroutine()
		return now <= before
	})
}

func runClient(t *testing.T, cfg link.ClientConfig) (*link.Client, context.CancelFunc, <-chan error) {
	t.Helper()
	c := link.NewClient(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return c, cancel, done
}

func testRunCancelConnected(t *testing.T) {
	h := newFakeHandler(false)
	srvCtx, stopSrv := context.WithCancel(context.Background())
	ps := &pipeServer{srv: link.NewServer(h, testNode, nil), ctx: srvCtx}
	defer func() { stopSrv(); ps.wg.Wait() }()
	c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "rc", Dial: ps.dial})
	defer cancel()

	var producers []*producer
	var sinks []*fakeSink
	for i := range 5 {
		p := newProducer(c.Open(streamInfo(i)), uint64(i))
		for range 30 {
			p.frame(t, 500)
		}
		producers = append(producers, p)
		sink := h.waitSink(t, key("rc", p.s.ID()))
		sink.waitSeq(t, 30)
		sink.Ack(t, 10)
		sinks = append(sinks, sink)
	}
	// Stream 0 finishes normally before the shutdown.
	producers[0].close(link.Close{Reason: callrec.EndStop})
	sinks[0].waitSeq(t, 31)
	reply := link.CloseReply{INUM: sinks[0].inum, State: callrec.StateComplete, Seq: 31}
	sinks[0].Closed(t, reply)
	waitDone(t, producers[0].s)
	// Stream 1 sent its close but the recorder did not answer.
	producers[1].close(link.Close{Reason: callrec.EndStop})
	// Keep frames coming on the others while Run stops.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range producers[2:] {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.s.Frame(&callrec.Frame{Chunk: 1, Payload: make([]byte, 10)})
			}
		})
	}
	for _, p := range producers[1:] {
		eventually(t, "acks", func() bool { return p.s.Acked() == 10 })
	}

	cancel()
	if err := recv(t, "Run to return", runErr); err != nil {
		t.Errorf("Run: %v", err)
	}
	for i, p := range producers {
		waitDone(t, p.s)
		r, err := p.s.Result()
		if i == 0 {
			if err != nil || r == nil || *r != reply {
				t.Errorf("stream 0: Result() = %v, %v; want %+v", r, err, reply)
			}
			continue
		}
		if r != nil || !errors.Is(err, link.ErrClientClosed) {
			t.Errorf("stream %d: Result() = %v, %v; want ErrClientClosed", i, r, err)
		}
	}
	close(stop)
	wg.Wait()
	for i, p := range producers {
		if n := p.s.Retained(); n != 0 {
			t.Errorf("stream %d: Retained() = %d after it finished", i, n)
		}
		if p.s.Frame(&callrec.Frame{Payload: []byte{1}}) {
			t.Errorf("stream %d: Frame accepted after Run returned", i)
		}
	}
	late := c.Open(streamInfo(9))
	select {
	case <-late.Done():
		if _, err := late.Result(); !errors.Is(err, link.ErrClientClosed) {
			t.Errorf("Open after Run returned: %v, want ErrClientClosed", err)
		}
	default:
		t.Error("Open after Run returned gives a live stream")
	}
	st := &c.Stats
	if c.Active() != 0 || c.Connected() || st.StreamsActive.Load() != 0 || st.RetainedBytes.Load() != 0 {
		t.Errorf("after Run: Active %d, Connected %v, Stats.StreamsActive %d, Stats.RetainedBytes %d; want 0, false, 0, 0",
			c.Active(), c.Connected(), st.StreamsActive.Load(), st.RetainedBytes.Load())
	}
}

// testRunCancelStalledHandshake: a recorder that accepts the connection but
// never answers HELLO must not hold Run past its context.
func testRunCancelStalledHandshake(t *testing.T) {
	dialed := make(chan struct{}, 1)
	var peers sync.WaitGroup
	defer peers.Wait()
	dial := func(ctx context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		peers.Go(func() {
			_, _ = io.Copy(io.Discard, b) // swallow HELLO, never answer
			b.Close()
		})
		select {
		case dialed <- struct{}{}:
		default:
		}
		return a, nil
	}
	c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "sh", Dial: dial})
	defer cancel()
	s := c.Open(streamInfo(1))
	recv(t, "dial", dialed)
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run still running 3s after cancel while the recorder does not answer HELLO")
	}
	waitDone(t, s)
	if _, err := s.Result(); !errors.Is(err, link.ErrClientClosed) {
		t.Errorf("Result: %v, want ErrClientClosed", err)
	}
}

// testRunCancelDialFailing: Run returns during the reconnect backoff.
func testRunCancelDialFailing(t *testing.T) {
	dialed := make(chan struct{}, 10)
	dial := func(ctx context.Context) (net.Conn, error) {
		select {
		case dialed <- struct{}{}:
		default:
		}
		return nil, errTest
	}
	c, cancel, runErr := runClient(t, link.ClientConfig{AdapterID: "df", Dial: dial})
	defer cancel()
	s := c.Open(streamInfo(1))
	recv(t, "dial", dialed)
	recv(t, "redial", dialed)
	cancel()
	if err := recv(t, "Run to return", runErr); err != nil {
		t.Errorf("Run: %v", err)
	}
	waitDone(t, s)
	if _, err := s.Result(); !errors.Is(err, link.ErrClientClosed) {
		t.Errorf("Result: %v, want ErrClientClosed", err)
	}
	if c.Stats.Reconnects.Load() < 1 {
		t.Error("no reconnect counted")
	}
}
