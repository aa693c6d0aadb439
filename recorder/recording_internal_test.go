package recorder

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/internal/link"
	"callrec/recorder/bolt"
)

// newTestRecording opens a node on a fresh data dir (not running: the test
// flushes by hand) and starts a recording of a stream with the given tracks.
func newTestRecording(t *testing.T, tracks ...string) *recording {
	t.Helper()
	dir := t.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	cfg := DefaultConfig()
	cfg.LagLimit = 100 * time.Millisecond // 800 samples: 5 frames
	n, err := Open(t.Context(), cfg, idx, FileStore{Root: filepath.Join(dir, "audio")}, nil, nil, nil)
	if err != nil {
		t.Fatalf("open recorder: %v", err)
	}
	info := callrec.StreamInfo{StreamSID: "MZ1", CallSID: "CA1", TrackNames: tracks}
	sink, _, err := n.OpenStream(t.Context(), link.StreamKey{Adapter: "a", ID: 1}, link.OpenRequest{Info: info}, nil)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	r := sink.(*source).r
	t.Cleanup(func() {
		r.srcs[0].Close(0, link.Close{Reason: callrec.EndShutdown})
		n.wg.Wait()
	})
	return r
}

// feeder sends frames to a recording with link sequence numbers from 1.
type feeder struct {
	r   *recording
	seq uint64
}

// send sends chunk of tr at ts ms with 160 bytes of fill and returns its seq.
func (f *feeder) send(tr callrec.Track, chunk, ts uint32, fill byte) uint64 {
	f.seq++
	f.r.srcs[0].Frame(&callrec.Frame{Seq: f.seq, Track: tr, Chunk: chunk, TimestampMS: ts, Payload: bytes.Repeat([]byte{fill}, frameSamples)})
	return f.seq
}

// nominal sends chunk at its nominal timestamp, filled with the chunk number.
func (f *feeder) nominal(tr callrec.Track, chunk uint32) uint64 {
	return f.send(tr, chunk, (chunk-1)*20, byte(chunk))
}

// flushed flushes r and returns the synced data bytes and the durable seq.
func flushed(t *testing.T, r *recording) (int64, uint64) {
	t.Helper()
	if err := r.flush(false); err != nil {
		t.Fatalf("flush: %v", err)
	}
	r.ioMu.Lock()
	synced := r.synced
	r.ioMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return synced, r.srcs[0].durable
}

// channel returns one channel of the synced audio.
func channel(t *testing.T, r *recording, tr callrec.Track) []byte {
	t.Helper()
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	data := make([]byte, r.synced)
	if _, err := r.blob.ReadAt(data, HeaderSize); err != nil && err != io.EOF {
		t.Fatalf("read audio: %v", err)
	}
	out := make([]byte, 0, len(data)/2)
	for i := int(tr); i < len(data); i += 2 {
		out = append(out, data[i])
	}
	return out
}

func frames(fills ...byte) []byte {
	var b []byte
	for _, f := range fills {
		b = append(b, bytes.Repeat([]byte{f}, frameSamples)...)
	}
	return b
}

// TestRecordingFlushPointAndAcks checks how far each flush writes and what
// it acknowledges: as far as both tracks have audio, never past a gap a
// late frame may fill until the lag limit, acks in sequence order only once
// the audio they need is synced; a late frame whose place is written is
// patched into the file.
func TestRecordingFlushPointAndAcks(t *testing.T) {
	in, out := callrec.TrackInbound, callrec.TrackOutbound
	r := newTestRecording(t, "inbound", "outbound")
	f := &feeder{r: r}

	for c := uint32(1); c <= 3; c++ {
		f.nominal(in, c) // seqs 1-3
	}
	f.nominal(out, 1) // 4
	f.nominal(out, 2) // 5
	if synced, durable := flushed(t, r); synced != 2*320 || durable != 2 {
		// Outbound reaches 320: seq 3 needs 480, so 4 and 5 wait behind it.
		t.Fatalf("flush 1: synced %d, durable %d; want 640, 2", synced, durable)
	}
	f.nominal(out, 3) // 6
	if synced, durable := flushed(t, r); synced != 2*480 || durable != 6 {
		t.Fatalf("flush 2: synced %d, durable %d; want 960, 6", synced, durable)
	}

	// Inbound chunk 4 is missing: its place [480, 640) is held back.
	f.nominal(in, 5)  // 7
	f.nominal(out, 4) // 8
	f.nominal(out, 5) // 9
	if synced, durable := flushed(t, r); synced != 2*480 || durable != 6 {
		t.Fatalf("flush 3: synced %d, durable %d; want 960 and 6 (held back)", synced, durable)
	}
	// Five frames later the lag limit writes past it.
	for c := uint32(6); c <= 10; c++ {
		f.nominal(in, c)
		f.nominal(out, c)
	} // seqs 10-19
	if synced, durable := flushed(t, r); synced != 2*800 || durable != 9 {
		t.Fatalf("flush 4: synced %d, durable %d; want 1600, 9", synced, durable)
	}
	wantIn := frames(1, 2, 3, 0xFF, 5)
	if got := channel(t, r, in); !bytes.Equal(got, wantIn) {
		t.Fatalf("inbound before the late frame:\n got %v\nwant %v", got, wantIn)
	}

	// Chunk 4 arrives after its place was written: patched in place.
	seq := f.nominal(in, 4)
	r.mu.Lock()
	patches := len(r.patches)
	r.mu.Unlock()
	if patches != 1 {
		t.Fatalf("%d patches queued for the late frame, want 1", patches)
	}
	// With the gap filled, everything both tracks have is written.
	if synced, durable := flushed(t, r); synced != 2*1600 || durable != seq {
		t.Fatalf("flush 5: synced %d, durable %d; want 3200, %d", synced, durable, seq)
	}
	all := frames(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	if got := channel(t, r, in); !bytes.Equal(got, all) {
		t.Errorf("inbound after the patch:\n got %v\nwant %v", got, all)
	}
	if got := channel(t, r, out); !bytes.Equal(got, all) {
		t.Errorf("outbound after the patch:\n got %v\nwant %v", got, all)
	}
	r.mu.Lock()
	acct := r.accountingLocked()
	r.mu.Unlock()
	if acct.Patched != 1 || acct.Tracks[0].OutOfOrder != 1 || acct.Tracks[0].Missing != 0 {
		t.Errorf("patched %d, inbound out of order %d, missing %d; want 1, 1, 0",
			acct.Patched, acct.Tracks[0].OutOfOrder, acct.Tracks[0].Missing)
	}
}

// A late frame whose gap is empty (the timestamps left no room for it) is
// received but writes nothing: it must not count as patched.
func TestRecordingEmptyLateFrameIsNotPatched(t *testing.T) {
	in := callrec.TrackInbound
	r := newTestRecording(t, "inbound")
	f := &feeder{r: r}
	f.send(in, 1, 0, 1)
	f.send(in, 3, 0, 3) // chunk 2's gap is [160, 160)
	for c := uint32(4); c <= 12; c++ {
		f.send(in, c, (c-2)*20, byte(c))
	}
	flushed(t, r) // to the lag limit: the empty gap holds it back
	if synced, _ := flushed(t, r); synced != 2*11*frameSamples {
		t.Fatalf("synced %d, want %d", synced, 2*11*frameSamples)
	}
	f.send(in, 2, 20, 2)
	r.mu.Lock()
	acct := r.accountingLocked()
	patches := len(r.patches)
	r.mu.Unlock()
	if acct.Patched != 0 || patches != 0 {
		t.Errorf("patched %d (%d queued), want 0: the frame had no room", acct.Patched, patches)
	}
	if ta := acct.Tracks[0]; ta.Received != 12 || ta.Samples != 11*frameSamples || ta.Missing != 0 {
		t.Errorf("received %d, samples %d, missing %d; want 12, %d, 0", ta.Received, ta.Samples, ta.Missing, 11*frameSamples)
	}
}

// Bad frames are reported in the accounting and acknowledged (nothing to
// write), never placed.
func TestRecordingBadFrames(t *testing.T) {
	in, out := callrec.TrackInbound, callrec.TrackOutbound
	r := newTestRecording(t, "inbound")
	f := &feeder{r: r}
	f.nominal(in, 1)
	f.nominal(out, 1)                        // the stream has no outbound track
	f.send(in, 0, 0, 9)                      // chunk 0
	f.send(in, 2, 1000*1000, 9)              // 1000 s ahead
	last := f.send(in, 2+maxChunkJump, 0, 9) // chunk far ahead
	if synced, durable := flushed(t, r); synced != 2*frameSamples || durable != last {
		t.Errorf("synced %d, durable %d; want 320, %d", synced, durable, last)
	}
	r.mu.Lock()
	acct := r.accountingLocked()
	r.mu.Unlock()
	var details []string
	for _, e := range acct.Errors {
		if e.Kind != callrec.ErrKindBadField {
			t.Errorf("error kind %q, want %q", e.Kind, callrec.ErrKindBadField)
		}
		details = append(details, e.Detail)
	}
	want := []string{
		"frame for track outbound the stream did not announce",
		"chunk 0", "timestamp jumps too far ahead", "chunk jumps too far ahead",
	}
	if diff := cmp.Diff(want, details); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{callrec.ErrKindBadField: 4}, acct.ErrorCounts); diff != "" {
		t.Errorf("error counts (-want +got):\n%s", diff)
	}
	if len(acct.Tracks) != 1 || acct.Tracks[0].Received != 1 || acct.Tracks[0].Expected != 1 {
		t.Errorf("tracks %+v, want inbound only with chunk 1", acct.Tracks)
	}
	if got := channel(t, r, out); !bytes.Equal(got, frames(0xFF)) {
		t.Errorf("outbound channel %v, want silence", got)
	}
}
