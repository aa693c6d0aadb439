package mediaadapter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/internal/twilio"
	"callrec/internal/ws"
	"callrec/mediaadapter"
	"callrec/placement"
	"callrec/recorder"
	"callrec/recorder/bolt"
	"callrec/recorder/wav"
)

const (
	waitTimeout  = 10 * time.Second
	frameSamples = 160
	testToken    = "0123456789abcdef0123456789abcdef"
	accountSID   = "ACe268443e43d93dab7ebef303bbe9642f"
)

// recNode is a real recorder (bbolt index and files in a temp dir) behind a
// real link server on 127.0.0.1.
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

func startRecorder(t testing.TB, name string, id uint16, change func(*recorder.Config)) *recNode {
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
	if r.node, err = recorder.Open(context.Background(), cfg, idx, r.blobs, nil, log, nil); err != nil {
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

// kill stops the recorder as a crash looks to an adapter: the link server
// first (listener and connections closed), then the node.
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

// segments returns r's recordings of stream sid, oldest first.
func (r *recNode) segments(t testing.TB, sid string) []*callrec.Recording {
	t.Helper()
	recs, _, err := r.node.FindRecordings(context.Background(), callrec.RecordingFilter{StreamSID: sid})
	if err != nil {
		t.Fatalf("find recordings of %s on %s: %v", sid, r.name, err)
	}
	slices.SortFunc(recs, func(a, b *callrec.Recording) int { return a.StartedAt.Compare(b.StartedAt) })
	return recs
}

// channels returns a recording's two channels.
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

// members is a fake membership (membership itself is tested in pool).
type members struct {
	mu sync.Mutex
	m  map[string]placement.Recorder
}

func newMembers(recs ...*recNode) *members {
	m := &members{m: map[string]placement.Recorder{}}
	for _, r := range recs {
		m.m[r.name] = placement.Recorder{Name: r.name, Addr: r.addr, Free: 100}
	}
	return m
}

func (m *members) Recorders() []placement.Recorder {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []placement.Recorder
	for _, r := range m.m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b placement.Recorder) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (m *members) Alive(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[name]
	return r.Addr, ok
}

// newPlacer returns a Placer (adapter-1 unless cfg says otherwise) whose
// links stop when the test ends.
func newPlacer(t testing.TB, cfg placement.Config) *placement.Placer {
	t.Helper()
	if cfg.AdapterID == "" {
		cfg.AdapterID = "adapter-1"
	}
	cfg.Log = callrectest.Logger(t).With("component", "placement")
	ctx, cancel := context.WithCancel(context.Background())
	p := placement.New(ctx, cfg)
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { p.Done(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("placer links did not stop within %v", waitTimeout)
		}
	})
	return p
}

// adapter is a media adapter Server behind an httptest server on
// 127.0.0.1, answering on /media and /media/pair/… as cmd/callrec mounts
// it; everything else under / also reaches the Server (which answers 404).
type adapter struct {
	srv    *mediaadapter.Server
	http   *httptest.Server
	reg    *prometheus.Registry
	public string // the URL Twilio is given (signatures are over it)
}

func startAdapter(t testing.TB, cfg mediaadapter.Config, rec mediaadapter.Opener, reg *prometheus.Registry) *adapter {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "wss://media.example.com/media"
	}
	if cfg.AuthToken == "" && !cfg.SkipSignature {
		cfg.AuthToken = testToken
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "adapter-1"
	}
	srv, err := mediaadapter.New(cfg, rec, callrectest.Logger(t).With("component", "mediaadapter"), reg)
	if err != nil {
		t.Fatalf("mediaadapter.New: %v", err)
	}
	a := &adapter{srv: srv, reg: reg, public: cfg.PublicURL}
	a.http = httptest.NewUnstartedServer(srv)
	a.http.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("adapter shutdown: %v", err)
		}
		a.http.Close()
	})
	return a
}

// dial opens a socket as Twilio does: path is the request path (e.g.
// /media/pair/g/1), signedURL the URL the signature is computed over.
func (a *adapter) dial(t testing.TB, path, signedURL, token string) (*ws.Conn, error) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set(twilio.SignatureHeader, twilio.Sign(token, signedURL, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return ws.Dial(ctx, "ws"+strings.TrimPrefix(a.http.URL, "http")+path, ws.DialOptions{Header: h})
}

// fakeTwilio sends a Media Stream by hand.
type fakeTwilio struct {
	t         testing.TB
	conn      *ws.Conn
	n         int // call number: payloads differ per call
	streamSID string
	callSID   string
	seq       int
	chunks    uint32 // chunks sent on each track
	maxWrite  time.Duration

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

func streamSID(n int) string { return fmt.Sprintf("MZ%032x", n) }
func callSID(n int) string   { return fmt.Sprintf("CA%032x", n) }

// twilioOn dials path signed over signedURL and sends connected and start
// with these custom parameters.
func (a *adapter) twilioOn(t testing.TB, n int, path, signedURL string, params map[string]string) *fakeTwilio {
	t.Helper()
	c, err := a.dial(t, path, signedURL, testToken)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	f := &fakeTwilio{t: t, conn: c, n: n, streamSID: streamSID(n), callSID: callSID(n), closed: make(chan struct{})}
	go f.readUntilClosed()
	t.Cleanup(func() { c.Close() })
	f.send(`{"event":"connected","protocol":"Call","version":"1.0.0"}`)
	if params == nil {
		params = map[string]string{}
	}
	cp, _ := json.Marshal(params)
	f.seq++
	f.send(fmt.Sprintf(`{"event":"start","sequenceNumber":"%d","start":{"accountSid":"%s","streamSid":"%s","callSid":"%s","tracks":["inbound","outbound"],"customParameters":%s,"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"%s"}`,
		f.seq, accountSID, f.streamSID, f.callSID, cp, f.streamSID))
	return f
}

// readUntilClosed reads (and so answers pings and close frames) until the
// socket ends.
func (f *fakeTwilio) readUntilClosed() {
	var buf []byte
	for {
		_, data, err := f.conn.ReadMessage(buf)
		if err != nil {
			f.closeOnce.Do(func() { f.closeErr = err; close(f.closed) })
			return
		}
		buf = data[:0]
	}
}

// send writes one message; it must never wait long: the adapter reads
// Twilio's socket without waiting for anything downstream.
func (f *fakeTwilio) send(msg string) {
	start := time.Now()
	if err := f.conn.WriteText([]byte(msg)); err != nil {
		f.t.Errorf("%s: send: %v", f.streamSID, err)
	}
	f.maxWrite = max(f.maxWrite, time.Since(start))
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

// media sends the next k chunks of both tracks.
func (f *fakeTwilio) media(k int) {
	for range k {
		f.chunks++
		for tr, name := range []string{"inbound", "outbound"} {
			f.seq++
			f.send(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"%s"}`,
				f.seq, name, f.chunks, (f.chunks-1)*20, base64.StdEncoding.EncodeToString(payload(f.n, callrec.Track(tr), f.chunks)), f.streamSID))
		}
	}
}

// stop sends Twilio's stop and waits for the adapter to close the socket.
func (f *fakeTwilio) stop() {
	f.t.Helper()
	f.seq++
	f.send(fmt.Sprintf(`{"event":"stop","sequenceNumber":"%d","stop":{"accountSid":"%s","callSid":"%s"},"streamSid":"%s"}`,
		f.seq, accountSID, f.callSID, f.streamSID))
	f.waitClosed(ws.CloseNormal)
}

// waitClosed waits until the adapter closed the socket with code.
func (f *fakeTwilio) waitClosed(code int) {
	f.t.Helper()
	select {
	case <-f.closed:
	case <-time.After(waitTimeout):
		f.t.Fatalf("%s: the adapter did not close the socket within %v", f.streamSID, waitTimeout)
	}
	var ce *ws.CloseError
	if !errors.As(f.closeErr, &ce) || ce.Code != code {
		f.t.Errorf("%s: socket ended with %v, want close code %d", f.streamSID, f.closeErr, code)
	}
}

// checkAudio compares chunks from..to of track tr in rec's file with what
// call n sent, at their place (a continuation's file starts at OffsetMS).
func checkAudio(t testing.TB, r *recNode, rec *callrec.Recording, n int, tr callrec.Track, from, to uint32) {
	t.Helper()
	ch := r.channels(t, rec)[tr]
	off := int(rec.Audio.OffsetMS) * callrec.SamplesPerMS
	for k := from; k <= to; k++ {
		pos := int(k-1)*frameSamples - off
		if pos < 0 || pos+frameSamples > len(ch) {
			t.Errorf("%s on %s track %s: chunk %d at sample %d is outside the file (%d samples, offset %d ms)",
				rec.INUM, r.name, tr, k, pos, len(ch), rec.Audio.OffsetMS)
			return
		}
		if string(ch[pos:pos+frameSamples]) != string(payload(n, tr, k)) {
			t.Errorf("%s on %s track %s: chunk %d differs from what was sent", rec.INUM, r.name, tr, k)
			return
		}
	}
}

// checkWhole checks that rec, on r, is the complete recording of what f
// sent: every chunk of both tracks, no gap, the very audio.
func checkWhole(t testing.TB, r *recNode, rec *callrec.Recording, f *fakeTwilio) {
	t.Helper()
	if rec.State != callrec.StateComplete || rec.PreviousINUM != "" || rec.Node != r.id {
		t.Errorf("%s on %s: state %q (%s), previous %q, node %d; want complete, no previous, node %d",
			f.streamSID, r.name, rec.State, rec.EndReason, rec.PreviousINUM, rec.Node, r.id)
	}
	if len(rec.Accounting.Tracks) != 2 {
		t.Fatalf("%s on %s: %d tracks, want 2", f.streamSID, r.name, len(rec.Accounting.Tracks))
	}
	for i, ta := range rec.Accounting.Tracks {
		if ta.FirstChunk != 1 || ta.LastChunk != f.chunks || ta.Missing != 0 || ta.Received != int64(f.chunks) || ta.Overflow != 0 {
			t.Errorf("%s on %s track %s: chunks %d..%d, %d received, %d missing, %d overflow; want 1..%d, none missing",
				f.streamSID, r.name, ta.Track, ta.FirstChunk, ta.LastChunk, ta.Received, ta.Missing, ta.Overflow, f.chunks)
		}
		checkAudio(t, r, rec, f.n, callrec.Track(i), 1, f.chunks)
	}
}

// lastChunk is the highest chunk of the inbound track r has of stream sid
// in its newest recording (0 when none).
func lastChunk(t testing.TB, r *recNode, sid string) uint32 {
	segs := r.segments(t, sid)
	if len(segs) == 0 || len(segs[len(segs)-1].Accounting.Tracks) == 0 {
		return 0
	}
	return segs[len(segs)-1].Accounting.Tracks[0].LastChunk
}
