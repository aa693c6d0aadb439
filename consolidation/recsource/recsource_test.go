package recsource_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/recsource"
	"callrec/consolidation/web"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/recorder"
	"callrec/recorder/bolt"
)

const (
	nodeID       = 7
	frameSamples = 160 // 20 ms of 8 kHz μ-law
	waitTimeout  = 10 * time.Second
)

// recNode is a real recorder node in a temp dir, running until the test ends.
type recNode struct {
	node  *recorder.Node
	blobs recorder.FileStore
}

func openNode(t *testing.T) *recNode {
	t.Helper()
	dir := t.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	blobs := recorder.FileStore{Root: filepath.Join(dir, "audio")}
	cfg := recorder.Config{NodeID: nodeID, FlushInterval: 10 * time.Millisecond, Fsync: true, LagLimit: 100 * time.Millisecond}
	n, err := recorder.Open(t.Context(), cfg, idx, blobs, nil, callrectest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("recorder Run: %v", err)
		}
	})
	return &recNode{node: n, blobs: blobs}
}

// payload is chunk's audio on track tr: distinct per frame, never silence.
func payload(tr callrec.Track, chunk uint32) []byte {
	p := make([]byte, frameSamples)
	for i := range p {
		p[i] = byte((int(chunk)*7 + i*3 + int(tr)*101) % 255)
	}
	return p
}

// stream is one open stream of a recNode.
type stream struct {
	inum callrec.INUM
	sink link.StreamSink
	seq  uint64
	next uint32 // next chunk
}

func (rn *recNode) open(t *testing.T, id uint32) *stream {
	t.Helper()
	info := callrec.StreamInfo{StreamSID: fmt.Sprintf("MZ%032x", id), CallSID: fmt.Sprintf("CA%032x", id),
		AccountSID: "AC0123456789abcdef0123456789abcdef", TrackNames: []string{"inbound", "outbound"},
		CustomParameters: map[string]string{"agent": "alice"}, Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1,
		StartedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	sink, reply, err := rn.node.OpenStream(t.Context(), link.StreamKey{Adapter: "adapter-1", ID: id}, link.OpenRequest{Info: info}, nil)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	return &stream{inum: reply.INUM, sink: sink, next: 1}
}

// send sends the next chunks on both tracks.
func (s *stream) send(chunks int) {
	for range chunks {
		c := s.next
		s.next++
		for _, tr := range []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound} {
			s.seq++
			s.sink.Frame(&callrec.Frame{Seq: s.seq, Track: tr, Chunk: c, TimestampMS: (c - 1) * 20,
				TwilioSeq: uint64(2*c) + uint64(tr), Payload: payload(tr, c)})
		}
	}
}

// record makes a complete recording of chunks 20 ms frames and returns it.
func (rn *recNode) record(t *testing.T, id uint32, chunks int) *callrec.Recording {
	t.Helper()
	s := rn.open(t, id)
	s.send(chunks)
	s.seq++
	s.sink.Close(s.seq, link.Close{Reason: callrec.EndStop, StopSeq: uint64(2*chunks + 2)})
	var rec *callrec.Recording
	callrectest.Eventually(t, waitTimeout, "the recording to finish", func() bool {
		r, err := rn.node.FindRecordingByINUM(context.Background(), s.inum)
		if err != nil {
			t.Fatalf("find recording: %v", err)
		}
		rec = r
		return r.State != callrec.StateRecording
	})
	if rec.State != callrec.StateComplete || rec.Audio.SHA256 == "" {
		t.Fatalf("recording %s: state %s (%s), digest %q", rec.INUM, rec.State, rec.EndDetail, rec.Audio.SHA256)
	}
	return rec
}

// file returns a recording's bytes as on disk.
func (rn *recNode) file(t *testing.T, rec *callrec.Recording) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rn.blobs.Root, filepath.FromSlash(rec.Audio.Ref)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// seen is a request the recorder API received.
type seen struct {
	Path, Range, Auth string
}

// recorderAPI serves a node's HTTP API on loopback behind a bearer token,
// as `callrec recorder --api-token` does, and records the requests.
type recorderAPI struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []seen
}

func serveRecorder(t *testing.T, h http.Handler, token string) *recorderAPI {
	t.Helper()
	a := &recorderAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.log = append(a.log, seen{Path: r.URL.Path, Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
		a.mu.Unlock()
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":"unauthenticated","message":"missing or wrong bearer token"}}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// requests returns and forgets the requests seen so far.
func (a *recorderAPI) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.log
	a.log = nil
	return l
}

// jsonOf is v as JSON (recordings compare by their wire form: the
// in-memory one has fields JSON drops).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRemoteRecordingAndAudio(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 1, 50) // 1 s
	file := rn.file(t, rec)
	if sha256Hex(file) != rec.Audio.SHA256 {
		t.Fatalf("file digest %s, recorded %s", sha256Hex(file), rec.Audio.SHA256)
	}
	api := serveRecorder(t, rn.node.Handler(), "s3cret-token")
	rem := recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL + "/"}, "s3cret-token")
	ctx := context.Background()

	got, err := rem.Recording(ctx, rec.INUM)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, rec) {
		t.Errorf("Recording = %s\nwant %s", jsonOf(t, got), jsonOf(t, rec))
	}

	api.requests()
	a, err := rem.OpenAudio(ctx, rec.INUM)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Size != int64(len(file)) || a.Recording.INUM != rec.INUM || a.Recording.Audio.SHA256 != rec.Audio.SHA256 {
		t.Errorf("audio size %d, recording %s %s; want %d bytes of %s", a.Size, a.Recording.INUM, a.Recording.Audio.SHA256, len(file), rec.INUM)
	}
	for _, r := range api.requests() {
		if strings.HasSuffix(r.Path, "/audio") {
			t.Errorf("OpenAudio fetched audio before any read: %+v", r)
		}
	}

	all, err := io.ReadAll(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, file) {
		t.Errorf("read %d bytes, differing from the %d-byte file", len(all), len(file))
	}
	reqs := api.requests()
	want := []seen{{Path: "/api/recordings/" + string(rec.INUM) + "/audio", Range: fmt.Sprintf("bytes=0-%d", len(file)-1), Auth: "Bearer s3cret-token"}}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Errorf("reading the whole file: requests (-want +got):\n%s", diff)
	}
	if n, err := a.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
	}

	// Seeks: each read continues a ranged GET from the reader's position.
	size := int64(len(file))
	steps := []struct {
		offset int64
		whence int
		pos    int64 // expected position
		n      int
	}{
		{100, io.SeekStart, 100, 50},
		{0, io.SeekCurrent, 150, 50}, // continues the same response
		{-10, io.SeekEnd, size - 10, 10},
		{-(size - 1000), io.SeekCurrent, 1000, 4000},
		{0, io.SeekStart, 0, 58},
		{size, io.SeekStart, size, 0},
	}
	for i, st := range steps {
		pos, err := a.Seek(st.offset, st.whence)
		if err != nil || pos != st.pos {
			t.Fatalf("step %d: Seek(%d, %d) = %d, %v; want %d", i, st.offset, st.whence, pos, err, st.pos)
		}
		buf := make([]byte, st.n)
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatalf("step %d: read %d bytes at %d: %v", i, st.n, pos, err)
		}
		if !bytes.Equal(buf, file[pos:pos+int64(st.n)]) {
			t.Errorf("step %d: bytes at %d differ from the file", i, pos)
		}
	}
	var ranges []string
	for _, r := range api.requests() {
		ranges = append(ranges, r.Range)
	}
	wantRanges := []string{
		fmt.Sprintf("bytes=100-%d", size-1),
		fmt.Sprintf("bytes=%d-%d", size-10, size-1),
		fmt.Sprintf("bytes=1000-%d", size-1),
		fmt.Sprintf("bytes=0-%d", size-1),
	}
	if diff := cmp.Diff(wantRanges, ranges); diff != "" {
		t.Errorf("range requests (-want +got):\n%s", diff)
	}
	if _, err := a.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	if _, err := a.Seek(0, 42); err == nil {
		t.Error("Seek with a bad whence succeeded")
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRemoteSendsToken(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 2, 5)
	for _, tok := range []string{"", "tok-1"} {
		api := serveRecorder(t, rn.node.Handler(), "")
		rem := recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, tok)
		a, err := rem.OpenAudio(context.Background(), rec.INUM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(a); err != nil {
			t.Fatal(err)
		}
		a.Close()
		want := ""
		if tok != "" {
			want = "Bearer " + tok
		}
		for _, r := range api.requests() {
			if r.Auth != want {
				t.Errorf("token %q: %s sent Authorization %q, want %q", tok, r.Path, r.Auth, want)
			}
		}
	}
}

func TestRemoteErrors(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 3, 5)
	api := serveRecorder(t, rn.node.Handler(), "right")
	ctx := context.Background()
	other, err := callrec.NewINUM(nodeID+1, 1)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := callrec.NewINUM(nodeID, 999)
	if err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	t.Cleanup(broken.Close)

	tests := []struct {
		name  string
		nodes map[uint16]string
		token string
		inum  callrec.INUM
		code  string
	}{
		{"unknown node", map[uint16]string{nodeID: api.srv.URL}, "right", other, callrec.EUNAVAILABLE},
		{"recorder down", map[uint16]string{nodeID: down.URL}, "right", rec.INUM, callrec.EUNAVAILABLE},
		{"recorder answers 502 text", map[uint16]string{nodeID: broken.URL}, "right", rec.INUM, callrec.EUNAVAILABLE},
		// Our token is wrong: the recorder's 401 is not the user's business.
		{"wrong token", map[uint16]string{nodeID: api.srv.URL}, "wrong", rec.INUM, callrec.EUNAVAILABLE},
		{"no such recording", map[uint16]string{nodeID: api.srv.URL}, "right", missing, callrec.ENOTFOUND},
	}
	for _, tt := range tests {
		rem := recsource.NewRemote(tt.nodes, tt.token)
		if _, err := rem.Recording(ctx, tt.inum); callrec.ErrorCode(err) != tt.code {
			t.Errorf("%s: Recording error %v, want code %s", tt.name, err, tt.code)
		}
		if a, err := rem.OpenAudio(ctx, tt.inum); callrec.ErrorCode(err) != tt.code {
			t.Errorf("%s: OpenAudio error %v, want code %s", tt.name, err, tt.code)
			if a != nil {
				a.Close()
			}
		}
	}

	// Nodes come and go.
	rem := recsource.NewRemote(nil, "right")
	if _, err := rem.Recording(ctx, rec.INUM); callrec.ErrorCode(err) != callrec.EUNAVAILABLE || !strings.Contains(callrec.ErrorMessage(err), "7") {
		t.Errorf("no nodes: %v, want unavailable naming node 7", err)
	}
	rem.SetNode(nodeID, api.srv.URL)
	if _, err := rem.Recording(ctx, rec.INUM); err != nil {
		t.Errorf("after SetNode: %v", err)
	}
	rem.SetNode(nodeID, "")
	if _, err := rem.Recording(ctx, rec.INUM); callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("after removing the node: %v, want unavailable", err)
	}
}

func TestRemoteRecorderGoesDownMidRead(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 4, 25)
	api := serveRecorder(t, rn.node.Handler(), "")
	rem := recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, "")
	a, err := rem.OpenAudio(context.Background(), rec.INUM)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	api.srv.Close()
	if _, err := a.Seek(200, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	n, err := a.Read(make([]byte, 100))
	if n != 0 || callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("Read with the recorder down = %d, %v; want 0 and an unavailable error", n, err)
	}
}

// TestRemoteRecorderIgnoringRange: a server that answers a ranged GET with
// the whole file from byte 0 must not be read as if it honoured the range.
func TestRemoteRecorderIgnoringRange(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 5, 10)
	file := rn.file(t, rec)
	mux := http.NewServeMux()
	mux.Handle("GET /api/recordings/{inum}", rn.node.Handler())
	mux.HandleFunc("GET /api/recordings/{inum}/audio", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(file) // 200, Range ignored
	})
	api := serveRecorder(t, mux, "")
	rem := recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, "")
	a, err := rem.OpenAudio(context.Background(), rec.INUM)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Seek(100, io.SeekStart)
	buf := make([]byte, 10)
	if n, err := a.Read(buf); err == nil && bytes.Equal(buf[:n], file[:n]) {
		t.Errorf("read file[0:%d] as if it were at offset 100", n)
	} else if callrec.ErrorCode(err) != callrec.EUNAVAILABLE {
		t.Errorf("Read = %d, %v; want an unavailable error", n, err)
	}
}

func TestLocal(t *testing.T) {
	rn := openNode(t)
	rec := rn.record(t, 6, 40)
	file := rn.file(t, rec)
	loc := recsource.Local{Node: rn.node}
	ctx := context.Background()

	got, err := loc.Recording(ctx, rec.INUM)
	if err != nil || jsonOf(t, got) != jsonOf(t, rec) {
		t.Errorf("Recording = %v, %v; want %s", got, err, jsonOf(t, rec))
	}
	a, err := loc.OpenAudio(ctx, rec.INUM)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(a)
	if err != nil || !bytes.Equal(all, file) || a.Size != int64(len(file)) {
		t.Errorf("read %d bytes (%v), size %d; want the %d-byte file", len(all), err, a.Size, len(file))
	}
	if pos, err := a.Seek(-100, io.SeekEnd); err != nil || pos != a.Size-100 {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	tail, _ := io.ReadAll(a)
	if !bytes.Equal(tail, file[len(file)-100:]) {
		t.Error("tail differs")
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Reading through a closed blob fails instead of serving stale data.
	if _, err := a.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Read(make([]byte, 10)); err == nil {
		t.Errorf("read %d bytes after Close", n)
	}

	missing, _ := callrec.NewINUM(nodeID, 999)
	if _, err := loc.Recording(ctx, missing); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("Recording of an unknown INUM: %v, want not found", err)
	}
	if _, err := loc.OpenAudio(ctx, missing); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("OpenAudio of an unknown INUM: %v, want not found", err)
	}
}

// TestLiveRecording reads a recording still being written, through both
// sources: what is synced, a playable header, the audio sent so far.
func TestLiveRecording(t *testing.T) {
	rn := openNode(t)
	s := rn.open(t, 7)
	s.send(30)
	var rec *callrec.Recording
	callrectest.Eventually(t, waitTimeout, "audio to be synced", func() bool {
		r, err := rn.node.FindRecordingByINUM(context.Background(), s.inum)
		if err != nil {
			t.Fatal(err)
		}
		rec = r
		return r.Audio.DataBytes >= 2*10*frameSamples
	})
	api := serveRecorder(t, rn.node.Handler(), "")
	for name, src := range map[string]web.Recordings{
		"local":  recsource.Local{Node: rn.node},
		"remote": recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, ""),
	} {
		a, err := src.OpenAudio(context.Background(), s.inum)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(a)
		a.Close()
		if err != nil || int64(len(b)) != a.Size || a.Size < recorder.HeaderSize+rec.Audio.DataBytes {
			t.Fatalf("%s: read %d bytes (%v), size %d", name, len(b), err, a.Size)
		}
		if a.Recording.State != callrec.StateRecording || a.Recording.Audio.SHA256 != "" {
			t.Errorf("%s: live recording state %s, digest %q", name, a.Recording.State, a.Recording.Audio.SHA256)
		}
		// The first frames, interleaved customer/agent.
		data := b[recorder.HeaderSize:]
		for c := uint32(1); c <= 10; c++ {
			in, out := payload(callrec.TrackInbound, c), payload(callrec.TrackOutbound, c)
			for i := range frameSamples {
				off := 2 * (int(c-1)*frameSamples + i)
				if data[off] != in[i] || data[off+1] != out[i] {
					t.Fatalf("%s: chunk %d sample %d = %#x/%#x, want %#x/%#x", name, c, i, data[off], data[off+1], in[i], out[i])
				}
			}
		}
		p, err := web.ComputePeaks(bytes.NewReader(b), int64(len(b)), 10)
		if err != nil || p.Points != 10 {
			t.Errorf("%s: peaks of the live file: %+v, %v", name, p, err)
		}
	}
	s.seq++
	s.sink.Close(s.seq, link.Close{Reason: callrec.EndStop})
	callrectest.Eventually(t, waitTimeout, "the recording to finish", func() bool { return rn.node.Active() == 0 })
}

// TestRemoteMergedRecording: the accounting of a merged, dual-recorded
// recording (its pair, replica, copies and supply runs) reaches
// consolidation from a recorder node intact.
func TestRemoteMergedRecording(t *testing.T) {
	n, err := callrec.NewINUM(nodeID, 5)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := callrec.Recording{INUM: n, Node: nodeID, State: callrec.StateInterrupted, EndReason: callrec.EndCrash,
		Stream: callrec.StreamInfo{StreamSID: "MZ1", CallSID: "CA1", TrackNames: []string{"inbound", "outbound"},
			CustomParameters: map[string]string{"pair": "rec-WR1", "copy": "1", "copies": "2"}, StartedAt: at,
			Pair: &callrec.StreamPair{Group: "rec-WR1", Copy: 1, Copies: 2}, Replica: 2},
		StartedAt: at, StoppedAt: at.Add(time.Minute), UpdatedAt: at.Add(time.Minute),
		Audio: callrec.AudioInfo{Ref: "a.wav", Format: "wav/mulaw-stereo", SampleRate: 8000, Channels: 2, DataBytes: 960000, DurationMS: 60000},
		Accounting: callrec.Accounting{
			Tracks: []callrec.TrackAccounting{{Track: "inbound", Expected: 3000, Received: 3000, FirstChunk: 1, LastChunk: 3000,
				Samples: 480000, Gaps: []callrec.Gap{}, Supply: []callrec.SupplyRun{{Copy: 1, FromChunk: 1, ToChunk: 10}, {Copy: 2, FromChunk: 11, ToChunk: 3000}},
				SupplyOmit: 3}},
			Copies: []callrec.CopyAccounting{
				{Copy: 1, StreamSID: "MZ1", Adapter: "a1", Alignment: callrec.AlignOrigin, Received: 20, Supplied: 20, JoinedAt: at,
					EndedAt: at.Add(time.Second), EndReason: callrec.EndSocketClosed},
				{Copy: 2, StreamSID: "MZ2", Adapter: "a2", Alignment: callrec.AlignClock, OffsetMS: -35, Received: 6000, Supplied: 5980,
					Redundant: 20, BeforeStart: 2, JoinedAt: at.Add(30 * time.Millisecond)}}}}
	body := jsonOf(t, rec)
	api := serveRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/recordings/"+string(n) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}), "")
	got, err := recsource.NewRemote(map[uint16]string{nodeID: api.srv.URL}, "").Recording(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, *got); diff != "" {
		t.Errorf("recording (-recorder +consolidation):\n%s", diff)
	}
}
