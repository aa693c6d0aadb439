package recorder_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"callrec"
	"callrec/internal/link"
	"callrec/recorder"
	"callrec/recorder/bolt"
	"callrec/recorder/wav"
)

const (
	frameSamples = 160 // 20 ms of 8 kHz μ-law: one Twilio media message
	waitTimeout  = 10 * time.Second
)

// fakeNotifier records the STARTED and STOPPED events it receives.
type fakeNotifier struct {
	mu     sync.Mutex
	events []callrec.RecordingEvent
}

func (f *fakeNotifier) NotifyRecording(_ context.Context, ev callrec.RecordingEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	return nil
}

func (f *fakeNotifier) Events() []callrec.RecordingEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]callrec.RecordingEvent(nil), f.events...)
}

// has reports whether an event of type typ for inum was received.
func (f *fakeNotifier) has(typ callrec.RecordingEventType, inum callrec.INUM) bool {
	for _, ev := range f.Events() {
		if ev.Type == typ && ev.Recording.INUM == inum {
			return true
		}
	}
	return false
}

// env is a recorder's data dir: its index and its audio files.
type env struct {
	dir    string
	blobs  recorder.FileStore
	notify *fakeNotifier
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	return &env{dir: dir, blobs: recorder.FileStore{Root: filepath.Join(dir, "audio")}, notify: &fakeNotifier{}}
}

func testConfig() recorder.Config {
	return recorder.Config{
		NodeID:        7,
		FlushInterval: 20 * time.Millisecond,
		Fsync:         true,
		// 100 ms: audio held back for a missing chunk is written as
		// silence once the stream is 5 frames past it.
		LagLimit: 100 * time.Millisecond,
	}
}

// openIndex opens the env's index; it is closed when the test ends.
func (e *env) openIndex(t *testing.T) *bolt.Index {
	t.Helper()
	idx, err := bolt.Open(filepath.Join(e.dir, "index.db"))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

// openNode opens a recorder on idx and the env's blobs (repairing what a
// crash left open).
func (e *env) openNode(t *testing.T, idx *bolt.Index) *recorder.Node {
	t.Helper()
	n, err := recorder.Open(t.Context(), testConfig(), idx, e.blobs, e.notify, nil, nil)
	if err != nil {
		t.Fatalf("open recorder: %v", err)
	}
	return n
}

// run runs n until the test ends; cleanup cancels it and waits for Run's
// shutdown to finish before the index closes.
func run(t *testing.T, n *recorder.Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func streamInfo(sid string) callrec.StreamInfo {
	return callrec.StreamInfo{
		StreamSID:        "MZ" + sid,
		CallSID:          "CA" + sid,
		AccountSID:       "AC0123456789abcdef0123456789abcdef",
		TrackNames:       []string{"inbound", "outbound"},
		CustomParameters: map[string]string{"agent": "42"},
		Encoding:         "audio/x-mulaw",
		SampleRate:       8000,
		Channels:         1,
		StartedAt:        time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		Adapter:          "adapter-1",
		Remote:           "192.0.2.1:443",
	}
}

// stream feeds one stream's records to a recorder as the link would, with
// link sequence numbers from 1, and keeps the timeline it should produce.
type stream struct {
	t    *testing.T
	inum callrec.INUM
	sink link.StreamSink
	seq  uint64
	want [callrec.NumTracks][]byte // expected channel audio, grown as frames are sent
}

func openStream(t *testing.T, n *recorder.Node, id uint32) *stream {
	t.Helper()
	key := link.StreamKey{Adapter: "adapter-1", ID: id}
	// No connection carries this stream: a nil Replier, as after Detach.
	sink, reply, err := n.OpenStream(t.Context(), key, link.OpenRequest{Info: streamInfo(fmt.Sprintf("%032x", id))}, nil)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	if reply.INUM == "" || reply.Resumed || reply.LastSeq != 0 {
		t.Fatalf("open reply = %+v, want a new INUM", reply)
	}
	return &stream{t: t, inum: reply.INUM, sink: sink}
}

// payload is chunk's audio on track tr: distinct per frame, never silence.
func payload(tr callrec.Track, chunk uint32) []byte {
	p := make([]byte, frameSamples)
	for i := range p {
		p[i] = byte((int(chunk)*7 + i*3 + int(tr)*101) % 255)
	}
	return p
}

// frame sends chunk of tr at its nominal timestamp plus jitter ms and adds
// it to the expected timeline at its place, (chunk-1)×160.
func (s *stream) frame(tr callrec.Track, chunk uint32, jitter int) {
	s.seq++
	p := payload(tr, chunk)
	s.sink.Frame(&callrec.Frame{
		Seq: s.seq, Track: tr, Chunk: chunk, TimestampMS: uint32(int(chunk-1)*20 + jitter),
		TwilioSeq: uint64(2*chunk) + uint64(tr), Payload: p,
	})
	pos := int(chunk-1) * frameSamples
	w := &s.want[tr]
	for len(*w) < pos+frameSamples {
		*w = append(*w, callrec.MulawSilence)
	}
	copy((*w)[pos:], p)
}

func (s *stream) note(n link.Note) {
	s.seq++
	s.sink.Note(s.seq, n)
}

func (s *stream) close(c link.Close) {
	s.seq++
	s.sink.Close(s.seq, c)
}

// wantAudio returns the expected channels, padded with silence to samples.
func (s *stream) wantAudio(samples int) [][]byte {
	out := make([][]byte, callrec.NumTracks)
	for tr := range out {
		c := append([]byte(nil), s.want[tr]...)
		for len(c) < samples {
			c = append(c, callrec.MulawSilence)
		}
		out[tr] = c
	}
	return out
}

// fileSize returns the size of a blob (0 while it does not exist).
func fileSize(t *testing.T, blobs recorder.BlobStore, ref string) int64 {
	t.Helper()
	b, err := blobs.Open(ref)
	if err != nil {
		return 0
	}
	defer b.Close()
	size, err := b.Size()
	if err != nil {
		t.Fatalf("size of %s: %v", ref, err)
	}
	return size
}

// readWAV reads a recording's file and checks that its header describes
// exactly the file: RIFF, fact and data sizes.
func readWAV(t *testing.T, blobs recorder.BlobStore, ref string) (file []byte, channels [][]byte) {
	t.Helper()
	b, err := blobs.Open(ref)
	if err != nil {
		t.Fatalf("open audio: %v", err)
	}
	defer b.Close()
	size, err := b.Size()
	if err != nil {
		t.Fatalf("size: %v", err)
	}
	file, err = io.ReadAll(io.NewSectionReader(b, 0, size))
	if err != nil {
		t.Fatalf("read audio: %v", err)
	}
	info, err := wav.Parse(b, size)
	if err != nil {
		t.Fatalf("parse header: %v", err)
	}
	want := wav.Info{Format: wav.FormatMulaw, Channels: 2, SampleRate: 8000, BitsPerSample: 8, BlockAlign: 2,
		DataOffset: recorder.HeaderSize, DataBytes: size - recorder.HeaderSize}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("header of a %d-byte file (-want +got):\n%s", size, diff)
	}
	le := binary.LittleEndian
	if got := int64(le.Uint32(file[wav.RIFFSizeOffset:])); got != size-8 {
		t.Errorf("RIFF size = %d, want file size - 8 = %d", got, size-8)
	}
	if got := int64(le.Uint32(file[wav.FactSamplesOffset:])); got != (size-recorder.HeaderSize)/2 {
		t.Errorf("fact samples = %d, want %d", got, (size-recorder.HeaderSize)/2)
	}
	return file, wav.Deinterleave(file[recorder.HeaderSize:], 2)
}

// checkAudio compares the channels with the expected timeline sample by
// sample and reports the first difference of each channel.
func checkAudio(t *testing.T, got, want [][]byte) {
	t.Helper()
	for c := range want {
		if len(got[c]) != len(want[c]) {
			t.Errorf("channel %d: %d samples, want %d", c, len(got[c]), len(want[c]))
			continue
		}
		for i := range want[c] {
			if got[c][i] != want[c][i] {
				t.Errorf("channel %d: sample %d (chunk %d, offset %d) = %#x, want %#x",
					c, i, i/frameSamples+1, i%frameSamples, got[c][i], want[c][i])
				break
			}
		}
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestNodeRecordsStream(t *testing.T) {
	e := newEnv(t)
	idx := e.openIndex(t)
	n := e.openNode(t, idx)
	run(t, n)

	s := openStream(t, n, 1)
	created, err := idx.FindRecordingByINUM(t.Context(), s.inum)
	if err != nil {
		t.Fatalf("find new recording: %v", err)
	}
	if created.State != callrec.StateRecording {
		t.Errorf("new recording state = %q, want recording", created.State)
	}
	ref := created.Audio.Ref

	const chunks = 40
	in, out := callrec.TrackInbound, callrec.TrackOutbound
	overflow := link.Note{
		StreamError: callrec.StreamError{At: time.Date(2025, 3, 1, 10, 0, 1, 0, time.UTC), Kind: callrec.ErrKindOverflow,
			Detail: "adapter retention budget exceeded: recorder not acknowledging"},
		Track: "outbound", FromChunk: 10, ToChunk: 11, Frames: 2,
	}
	for c := uint32(1); c <= chunks; c++ {
		// Inbound: 5 is lost, 8 comes after its place is in the file, 12
		// twice, 16 before 15.
		switch c {
		case 5, 8, 15:
		case 12:
			s.frame(in, c, 0)
			s.frame(in, c, 0)
		case 16:
			s.frame(in, 16, 0)
			s.frame(in, 15, 0)
		default:
			s.frame(in, c, 0)
		}
		// Outbound: the adapter dropped 10 and 11 and says so; 33 is 3 ms
		// late; 25 comes again later; the last chunk never arrives.
		switch c {
		case 10, 11, chunks:
		case 12:
			s.note(overflow)
			s.frame(out, c, 0)
		case 30:
			s.frame(out, 25, 0)
			s.frame(out, c, 0)
		case 33:
			s.frame(out, c, +3)
		default:
			s.frame(out, c, 0)
		}
		if c == 20 {
			// Let the flusher write past chunk 8's place (silence after
			// the lag limit), then send chunk 8: it must be patched in.
			end := recorder.HeaderSize + 2*int64(8*frameSamples)
			waitFor(t, "chunk 8's place to be written", func() bool { return fileSize(t, e.blobs, ref) >= end })
			s.frame(in, 8, 0)
		}
	}
	s.close(link.Close{Reason: callrec.EndStop, StopSeq: 2*chunks + 2})

	var rec *callrec.Recording
	waitFor(t, "the recording to be complete and STOPPED emitted", func() bool {
		r, err := idx.FindRecordingByINUM(t.Context(), s.inum)
		if err != nil {
			t.Fatalf("find recording: %v", err)
		}
		rec = r
		return r.State != callrec.StateRecording && e.notify.has(callrec.RecordingStopped, s.inum)
	})
	if rec.State != callrec.StateComplete || rec.EndReason != callrec.EndStop {
		t.Fatalf("state %q, end reason %q (%s); want complete, stop", rec.State, rec.EndReason, rec.EndDetail)
	}
	if n.Active() != 0 {
		t.Errorf("Active() = %d after the stream finished, want 0", n.Active())
	}

	// The file: header sizes, digest, and every sample of both channels.
	const samples = chunks * frameSamples
	file, got := readWAV(t, e.blobs, ref)
	if int64(len(file)) != recorder.HeaderSize+2*samples {
		t.Errorf("file is %d bytes, want %d", len(file), recorder.HeaderSize+2*samples)
	}
	checkAudio(t, got, s.wantAudio(samples))
	wantAudio := callrec.AudioInfo{
		Ref: ref, Format: recorder.AudioFormat, SampleRate: 8000, Channels: 2,
		DataBytes: int64(len(file)) - recorder.HeaderSize, DurationMS: 800, SHA256: sha256Hex(file),
	}
	if diff := cmp.Diff(wantAudio, rec.Audio); diff != "" {
		t.Errorf("audio info (-want +got):\n%s", diff)
	}

	// The accounting: exactly what was injected.
	wantAcct := callrec.Accounting{
		Tracks: []callrec.TrackAccounting{
			{
				Track: "inbound", Expected: 40, Received: 39, Duplicates: 1, OutOfOrder: 2, Missing: 1,
				FirstChunk: 1, LastChunk: 40, Samples: 39 * frameSamples,
				Gaps: []callrec.Gap{{Cause: callrec.GapMissing, FromChunk: 5, ToChunk: 5, Frames: 1, StartMS: 80, EndMS: 100}},
			},
			{
				Track: "outbound", Expected: 39, Received: 37, Duplicates: 1, Missing: 2,
				FirstChunk: 1, LastChunk: 39, Samples: 37 * frameSamples, Overflow: 2,
				Gaps: []callrec.Gap{{Cause: callrec.GapOverflow, FromChunk: 10, ToChunk: 11, Frames: 2, StartMS: 180, EndMS: 220}},
			},
		},
		Messages:    callrec.MessageAccounting{StopSeq: 82, MediaSent: 80, MediaSeen: 76, TailMissed: 1},
		Errors:      []callrec.StreamError{overflow.StreamError},
		ErrorCounts: map[string]int{callrec.ErrKindOverflow: 1},
		Patched:     1,
	}
	if diff := cmp.Diff(wantAcct, rec.Accounting); diff != "" {
		t.Errorf("accounting (-want +got):\n%s", diff)
	}

	wantStream := created.Stream
	wantStream.Tracks = []callrec.Track{in, out}
	if diff := cmp.Diff(wantStream, rec.Stream); diff != "" {
		t.Errorf("stream info (-want +got):\n%s", diff)
	}
	if rec.StoppedAt.Before(rec.StartedAt) || !rec.StartedAt.Equal(created.StartedAt) {
		t.Errorf("started %v, stopped %v; created at %v", rec.StartedAt, rec.StoppedAt, created.StartedAt)
	}

	// STARTED then STOPPED, the latter with the stored record.
	evs := e.notify.Events()
	if len(evs) != 2 || evs[0].Type != callrec.RecordingStarted || evs[1].Type != callrec.RecordingStopped {
		t.Fatalf("events %v, want STARTED then STOPPED", eventTypes(evs))
	}
	if evs[0].Recording.INUM != s.inum || evs[0].Recording.State != callrec.StateRecording {
		t.Errorf("STARTED for %s in state %q, want %s in state recording", evs[0].Recording.INUM, evs[0].Recording.State, s.inum)
	}
	if diff := cmp.Diff(*rec, evs[1].Recording, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("STOPPED recording differs from the index (-index +event):\n%s", diff)
	}

	// The node serves the finished recording from the index.
	found, total, err := n.FindRecordings(t.Context(), callrec.RecordingFilter{CallSID: rec.Stream.CallSID})
	if err != nil || total != 1 || len(found) != 1 || found[0].INUM != s.inum || found[0].State != callrec.StateComplete {
		t.Errorf("FindRecordings by call = %v, %d, %v; want the complete recording", found, total, err)
	}
}

func eventTypes(evs []callrec.RecordingEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev.Type)+" "+string(ev.Recording.INUM))
	}
	return out
}

func TestNodeRepairsAfterCrash(t *testing.T) {
	e := newEnv(t)
	idx := e.openIndex(t)
	n := e.openNode(t, idx)

	s := openStream(t, n, 2)
	created, err := idx.FindRecordingByINUM(t.Context(), s.inum)
	if err != nil {
		t.Fatalf("find new recording: %v", err)
	}
	ref := created.Audio.Ref
	const flushed = 10
	for c := uint32(1); c <= flushed; c++ {
		s.frame(callrec.TrackInbound, c, 0)
		s.frame(callrec.TrackOutbound, c, 0)
	}
	n.FlushAll()
	want := s.wantAudio(flushed * frameSamples)
	if size := fileSize(t, e.blobs, ref); size != recorder.HeaderSize+2*flushed*frameSamples {
		t.Fatalf("after the flush the file is %d bytes, want %d", size, recorder.HeaderSize+2*flushed*frameSamples)
	}
	// Received but never written: lost in the crash.
	for c := uint32(flushed + 1); c <= flushed+5; c++ {
		s.frame(callrec.TrackInbound, c, 0)
		s.frame(callrec.TrackOutbound, c, 0)
	}

	// kill -9: no finalize, files closed by the kernel, index lock released.
	n.Abandon()
	if err := idx.Close(); err != nil {
		t.Fatalf("close index: %v", err)
	}
	// A torn write: half a stereo sample frame after the synced audio.
	f, err := os.OpenFile(filepath.Join(e.blobs.Root, filepath.FromSlash(ref)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open audio file: %v", err)
	}
	if _, err := f.Write([]byte{0x42}); err != nil {
		t.Fatalf("append torn byte: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same data dir.
	e.notify = &fakeNotifier{}
	idx2 := e.openIndex(t)
	n2 := e.openNode(t, idx2)
	run(t, n2)

	rec, err := idx2.FindRecordingByINUM(t.Context(), s.inum)
	if err != nil {
		t.Fatalf("find repaired recording: %v", err)
	}
	if rec.State != callrec.StateInterrupted || rec.EndReason != callrec.EndCrash {
		t.Fatalf("state %q, end reason %q (%s); want interrupted, crash", rec.State, rec.EndReason, rec.EndDetail)
	}
	if rec.StoppedAt.IsZero() {
		t.Error("repaired recording has no stopped_at")
	}
	const data = 2 * flushed * frameSamples
	if rec.Interrupted == nil {
		t.Fatal("repaired recording has no interruption")
	}
	wantIn := callrec.Interruption{RepairedAt: rec.Interrupted.RepairedAt, HeaderBytes: data, RecoveredBytes: data, TruncatedBytes: 1}
	if diff := cmp.Diff(wantIn, *rec.Interrupted); diff != "" {
		t.Errorf("interruption (-want +got):\n%s", diff)
	}

	file, got := readWAV(t, e.blobs, ref)
	if len(file) != recorder.HeaderSize+data {
		t.Errorf("repaired file is %d bytes, want %d (torn byte cut)", len(file), recorder.HeaderSize+data)
	}
	checkAudio(t, got, want)
	wantAudio := callrec.AudioInfo{
		Ref: ref, Format: recorder.AudioFormat, SampleRate: 8000, Channels: 2,
		DataBytes: data, DurationMS: flushed * 20, SHA256: sha256Hex(file),
	}
	if diff := cmp.Diff(wantAudio, rec.Audio); diff != "" {
		t.Errorf("audio info (-want +got):\n%s", diff)
	}

	evs := e.notify.Events()
	if len(evs) != 1 || evs[0].Type != callrec.RecordingStopped || evs[0].Recording.INUM != s.inum ||
		evs[0].Recording.State != callrec.StateInterrupted {
		t.Errorf("events after restart %v, want STOPPED %s (interrupted)", eventTypes(evs), s.inum)
	}
	if open, err := idx2.OpenRecordings(t.Context()); err != nil || len(open) != 0 {
		t.Errorf("open recordings after repair = %v, %v; want none", open, err)
	}

	// The restarted node goes on with new INUMs.
	s2 := openStream(t, n2, 3)
	if s2.inum == s.inum {
		t.Errorf("new recording after restart reuses INUM %s", s.inum)
	}
}

// TestNodeLiveSnapshotWhileFlushing reads a recording's live accounting (as
// the HTTP API and the periodic checkpoint do) while it is being flushed:
// the synced size it reports never goes back and is always on disk.
func TestNodeLiveSnapshotWhileFlushing(t *testing.T) {
	e := newEnv(t)
	idx := e.openIndex(t)
	n := e.openNode(t, idx)
	s := openStream(t, n, 4)
	created, err := idx.FindRecordingByINUM(t.Context(), s.inum)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			rec, err := n.FindRecordingByINUM(context.Background(), s.inum)
			if err != nil {
				t.Errorf("live recording: %v", err)
				return
			}
			size := fileSize(t, e.blobs, created.Audio.Ref)
			if d := rec.Audio.DataBytes; d < last || d%2 != 0 || recorder.HeaderSize+d > size {
				t.Errorf("live data bytes %d after %d, file %d bytes", d, last, size)
				return
			}
			last = rec.Audio.DataBytes
		}
	})
	for c := uint32(1); c <= 500; c++ {
		s.frame(callrec.TrackInbound, c, 0)
		s.frame(callrec.TrackOutbound, c, 0)
		n.FlushAll()
	}
	close(stop)
	wg.Wait()
}
