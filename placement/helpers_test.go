package placement_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/placement"
	"callrec/recorder"
	"callrec/recorder/bolt"
	"callrec/recorder/wav"
)

const (
	waitTimeout  = 10 * time.Second
	frameSamples = 160 // 20 ms of 8 kHz μ-law: one Twilio media message
)

// recNode is a real recorder: a node with a bbolt index and a FileStore in
// a temp dir, behind a real link server on a 127.0.0.1 listener.
type recNode struct {
	t     testing.TB
	name  string
	id    uint16
	addr  string
	node  *recorder.Node
	blobs recorder.FileStore

	srvCancel, nodeCancel context.CancelFunc
	srvDone, nodeDone     chan error
	once                  sync.Once
}

// startRecorder starts a recorder; it is killed when the test ends, before
// its index is closed.
func startRecorder(t testing.TB, name string, id uint16) *recNode {
	t.Helper()
	return startRecorderWith(t, name, id, nil)
}

// startRecorderWith is startRecorder with a change to the node's config.
func startRecorderWith(t testing.TB, name string, id uint16, change func(*recorder.Config)) *recNode {
	t.Helper()
	dir := t.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatalf("open index of %s: %v", name, err)
	}
	t.Cleanup(func() { _ = idx.Close() }) // after kill: cleanups run last first
	r := &recNode{t: t, name: name, id: id, blobs: recorder.FileStore{Root: filepath.Join(dir, "audio")},
		srvDone: make(chan error, 1), nodeDone: make(chan error, 1)}
	log := callrectest.Logger(t).With("recorder", name)
	cfg := recorder.Config{NodeID: id, FlushInterval: 20 * time.Millisecond, Fsync: true, LagLimit: 100 * time.Millisecond}
	if change != nil {
		change(&cfg)
	}
	r.node, err = recorder.Open(context.Background(), cfg, idx, r.blobs, nil, log, nil)
	if err != nil {
		t.Fatalf("open recorder %s: %v", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r.addr = ln.Addr().String()
	var nodeCtx, srvCtx context.Context
	nodeCtx, r.nodeCancel = context.WithCancel(context.Background())
	srvCtx, r.srvCancel = context.WithCancel(context.Background())
	go func() { r.nodeDone <- r.node.Run(nodeCtx) }()
	srv := link.NewServer(r.node, id, log)
	go func() { r.srvDone <- srv.Serve(srvCtx, ln) }()
	t.Cleanup(r.kill)
	return r
}

// kill stops the recorder as a crash would look to the adapter: its link
// server stops first (listener and connections closed, streams detached),
// then the node finishes what it had as interrupted.
func (r *recNode) kill() {
	r.once.Do(func() {
		r.srvCancel()
		r.wait("link server", r.srvDone)
		r.nodeCancel()
		r.wait("node", r.nodeDone)
	})
}

func (r *recNode) wait(what string, done chan error) {
	select {
	case err := <-done:
		if err != nil {
			r.t.Errorf("recorder %s %s: %v", r.name, what, err)
		}
	case <-time.After(waitTimeout):
		r.t.Errorf("recorder %s %s did not stop within %v", r.name, what, waitTimeout)
	}
}

// segments returns the recordings of stream sid on r, oldest first.
func (r *recNode) segments(t testing.TB, sid string) []*callrec.Recording {
	t.Helper()
	recs, _, err := r.node.FindRecordings(context.Background(), callrec.RecordingFilter{StreamSID: sid})
	if err != nil {
		t.Fatalf("find recordings of %s on %s: %v", sid, r.name, err)
	}
	slices.SortFunc(recs, func(a, b *callrec.Recording) int { return a.StartedAt.Compare(b.StartedAt) })
	return recs
}

// count returns how many recordings r has.
func (r *recNode) count(t testing.TB) int {
	t.Helper()
	_, total, err := r.node.FindRecordings(context.Background(), callrec.RecordingFilter{Limit: 1})
	if err != nil {
		t.Fatalf("count recordings on %s: %v", r.name, err)
	}
	return total
}

// channels reads a recording's file and returns its two channels.
func (r *recNode) channels(t testing.TB, rec *callrec.Recording) [][]byte {
	t.Helper()
	b, err := r.blobs.Open(rec.Audio.Ref)
	if err != nil {
		t.Fatalf("open audio of %s: %v", rec.INUM, err)
	}
	defer b.Close()
	size, err := b.Size()
	if err != nil {
		t.Fatal(err)
	}
	file, err := io.ReadAll(io.NewSectionReader(b, 0, size))
	if err != nil {
		t.Fatalf("read audio of %s: %v", rec.INUM, err)
	}
	if len(file) < recorder.HeaderSize {
		t.Fatalf("audio of %s is %d bytes, shorter than its header", rec.INUM, len(file))
	}
	return wav.Deinterleave(file[recorder.HeaderSize:], callrec.NumTracks)
}

// members is the fake membership: which recorders are live, draining, and
// their load. Membership itself is tested in package pool.
type members struct {
	mu    sync.Mutex
	m     map[string]*member
	lists int         // calls of Recorders
	gate  *gate       // if set, holds callers of Recorders
	alive []aliveCall // calls of Alive
}

// gate holds callers of Recorders until n of them are inside, so that
// that many Opens are truly simultaneous. It opens anyway a second after the
// first caller, should the placer call Recorders under a lock.
type gate struct {
	mu   sync.Mutex
	n    int
	open chan struct{}
	once sync.Once
}

func newGate(n int) *gate { return &gate{n: n, open: make(chan struct{})} }

func (g *gate) pass() {
	g.mu.Lock()
	g.n--
	if g.n == 0 {
		g.once.Do(func() { close(g.open) })
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(time.Second):
		g.once.Do(func() { close(g.open) })
	}
}

type member struct {
	rec      placement.Recorder
	draining bool
}

type aliveCall struct {
	name string
	at   time.Time
	ok   bool
}

var _ placement.Recorders = (*members)(nil)

func newMembers() *members { return &members{m: map[string]*member{}} }

func (m *members) Recorders() []placement.Recorder {
	m.mu.Lock()
	m.lists++
	g := m.gate
	m.mu.Unlock()
	if g != nil {
		g.pass()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []placement.Recorder
	for _, mb := range m.m {
		if !mb.draining {
			out = append(out, mb.rec)
		}
	}
	slices.SortFunc(out, func(a, b placement.Recorder) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (m *members) Alive(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.m[name]
	m.alive = append(m.alive, aliveCall{name: name, at: time.Now(), ok: ok})
	if !ok {
		return "", false
	}
	return mb.rec.Addr, true
}

// add makes r a live member with the given free room and load.
func (m *members) add(r *recNode, free, active int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[r.name] = &member{rec: placement.Recorder{Name: r.name, Addr: r.addr, Free: free, Active: active}}
}

// drain keeps r a live member that takes no new streams.
func (m *members) drain(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[name].draining = true
}

// remove makes r leave (membership declared it dead).
func (m *members) remove(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, name)
}

func (m *members) listCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lists
}

// aliveAsked reports whether Alive(name) was called at or after t.
func (m *members) aliveAsked(name string, t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.alive {
		if c.name == name && !c.at.Before(t) {
			return true
		}
	}
	return false
}

// network is the placer's Dial: real TCP on loopback, with addresses that
// can be cut off (refused or black-holed, as in a partition).
type network struct {
	mu        sync.Mutex
	refused   map[string]bool
	blackhole map[string]bool
	conns     map[string][]net.Conn
	dials     map[string]int
}

func newNetwork() *network {
	return &network{refused: map[string]bool{}, blackhole: map[string]bool{}, conns: map[string][]net.Conn{}, dials: map[string]int{}}
}

func (n *network) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials[addr]++
	refused, hole := n.refused[addr], n.blackhole[addr]
	n.mu.Unlock()
	switch {
	case refused:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case hole: // SYNs dropped: a dial without deadline hangs (here until ctx ends)
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns[addr] = append(n.conns[addr], c)
	n.mu.Unlock()
	return c, nil
}

// cut breaks every connection to addr and makes new dials fail: refused,
// or hanging when blackhole is set.
func (n *network) cut(addr string, blackhole bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if blackhole {
		n.blackhole[addr] = true
	} else {
		n.refused[addr] = true
	}
	for _, c := range n.conns[addr] {
		c.Close()
	}
	n.conns[addr] = nil
}

// heal lets dials to addr through again.
func (n *network) heal(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.refused, addr)
	delete(n.blackhole, addr)
}

func (n *network) dialCount(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// newPlacer returns a Placer over m with a fresh registry; its links stop
// when the test ends.
func newPlacer(t testing.TB, cfg placement.Config) (*placement.Placer, *prometheus.Registry, context.CancelFunc) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.AdapterID == "" {
		cfg.AdapterID = "adapter-1"
	}
	cfg.Registerer = reg
	cfg.Log = callrectest.Logger(t).With("adapter", cfg.AdapterID)
	ctx, cancel := context.WithCancel(context.Background())
	p := placement.New(ctx, cfg)
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { p.Done(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("placer links did not stop within %v of cancel", waitTimeout)
		}
	})
	return p, reg, cancel
}

// call is one Media Stream fed the way the media adapter's read loop does:
// Open on start, Frame per media message (both tracks, chunk by chunk),
// Close on stop. Only one goroutine at a time may use it.
type call struct {
	t      testing.TB
	n      int
	info   callrec.StreamInfo
	s      *link.Stream
	chunks uint32 // chunks sent on each track
	f      callrec.Frame
}

func streamInfo(n int) callrec.StreamInfo {
	return callrec.StreamInfo{
		StreamSID:  fmt.Sprintf("MZ%032x", n),
		CallSID:    fmt.Sprintf("CA%032x", n),
		AccountSID: "AC0123456789abcdef0123456789abcdef",
		TrackNames: []string{"inbound", "outbound"},
		Encoding:   "audio/x-mulaw", SampleRate: 8000, Channels: 1,
		StartedAt: time.Now().UTC(), Adapter: "adapter-1", Remote: "192.0.2.1:443",
	}
}

func openCall(t testing.TB, p *placement.Placer, n int) *call {
	c := &call{t: t, n: n, info: streamInfo(n)}
	c.s = p.Open(c.info)
	if c.s == nil {
		t.Fatalf("Open(%s) returned no stream", c.info.StreamSID)
	}
	return c
}

// payload is chunk's audio on track tr of call n: distinct per call, track
// and chunk, never silence.
func payload(n int, tr callrec.Track, chunk uint32) []byte {
	p := make([]byte, frameSamples)
	for i := range p {
		p[i] = byte((n*13 + int(chunk)*7 + i*3 + int(tr)*101) % 255)
	}
	return p
}

// send sends the next k chunks of both tracks.
func (c *call) send(k int) {
	for range k {
		c.chunks++
		for _, tr := range []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound} {
			c.f = callrec.Frame{Track: tr, Chunk: c.chunks, TimestampMS: (c.chunks - 1) * 20,
				TwilioSeq: uint64(2*c.chunks) + uint64(tr), Payload: payload(c.n, tr, c.chunks)}
			if !c.s.Frame(&c.f) {
				c.t.Errorf("%s: frame %d/%s refused (dropped %d, failed: %v)", c.info.StreamSID, c.chunks, tr, c.s.Dropped(), c.s.Failed())
				return
			}
		}
	}
}

// stop sends Twilio's stop: start is message 1, media 2..2n+1, stop 2n+2.
func (c *call) stop() {
	c.s.Close(link.Close{Reason: callrec.EndStop, StopSeq: uint64(2*c.chunks) + 2})
}

// finish waits for the recorder's answer to the stop and returns it.
func (c *call) finish(t testing.TB) *link.CloseReply {
	t.Helper()
	select {
	case <-c.s.Done():
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no answer to the stop within %v (acked %d)", c.info.StreamSID, waitTimeout, c.s.Acked())
	}
	reply, err := c.s.Result()
	if err != nil {
		t.Fatalf("%s ended with %v", c.info.StreamSID, err)
	}
	return reply
}

// checkWhole checks that rec is the complete recording of c on one segment:
// every chunk of both tracks, audio identical to what was sent.
func checkWhole(t testing.TB, r *recNode, rec *callrec.Recording, c *call) {
	t.Helper()
	if rec.State != callrec.StateComplete || rec.PreviousINUM != "" || rec.Node != r.id {
		t.Errorf("%s on %s: state %q (%s), previous %q, node %d; want complete, no previous, node %d",
			c.info.StreamSID, r.name, rec.State, rec.EndReason, rec.PreviousINUM, rec.Node, r.id)
	}
	for i, ta := range rec.Accounting.Tracks {
		if ta.FirstChunk != 1 || ta.LastChunk != c.chunks || ta.Missing != 0 || ta.Received != int64(c.chunks) {
			t.Errorf("%s on %s track %s: chunks %d..%d, %d received, %d missing; want 1..%d, none missing",
				c.info.StreamSID, r.name, ta.Track, ta.FirstChunk, ta.LastChunk, ta.Received, ta.Missing, c.chunks)
		}
		checkAudio(t, r, rec, c, callrec.Track(i), 1, c.chunks)
	}
}

// checkAudio compares chunks from..to of track tr in rec's file with what c
// sent, at their place (the file of a continuation starts at OffsetMS).
func checkAudio(t testing.TB, r *recNode, rec *callrec.Recording, c *call, tr callrec.Track, from, to uint32) {
	t.Helper()
	ch := r.channels(t, rec)[tr]
	off := int(rec.Audio.OffsetMS) * callrec.SamplesPerMS
	for k := from; k <= to; k++ {
		pos := int(k-1)*frameSamples - off
		if pos < 0 || pos+frameSamples > len(ch) {
			t.Errorf("%s %s track %s: chunk %d at sample %d is outside the file (%d samples, offset %d ms)",
				rec.INUM, r.name, tr, k, pos, len(ch), rec.Audio.OffsetMS)
			return
		}
		if want := payload(c.n, tr, k); string(ch[pos:pos+frameSamples]) != string(want) {
			t.Errorf("%s %s track %s: chunk %d differs from what was sent", rec.INUM, r.name, tr, k)
			return
		}
	}
}

// within runs f in a goroutine and fails the test if it does not return
// within d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// waitUntil polls cond every 10 ms until it holds, or fails the test after
// d with explain's message (computed then, so it can show state).
func waitUntil(t testing.TB, d time.Duration, cond func() bool, explain func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, explain())
		}
		<-tick.C
	}
}
