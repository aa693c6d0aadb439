package recorder

import (
	"bytes"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/internal/link"
	"callrec/recorder/bolt"
)

// callAudio is a call's audio: frame k of track t is audio[t][k*160:].
// Every frame differs (random), as real line audio does.
type callAudio [callrec.NumTracks][]byte

func newCallAudio(frames int, seed uint64) callAudio {
	rng := rand.New(rand.NewPCG(seed, 1))
	var a callAudio
	for t := range a {
		a[t] = make([]byte, frames*frameSamples)
		for i := range a[t] {
			a[t][i] = byte(rng.UintN(256))
		}
	}
	return a
}

func (a callAudio) frame(t callrec.Track, k int) []byte {
	return a[t][k*frameSamples : (k+1)*frameSamples]
}

// pairNode is a recorder node (not running: the test decides when copies
// close) with the streams of one pair.
type pairNode struct {
	t     *testing.T
	n     *Node
	epoch time.Time
}

func newPairNode(t *testing.T) *pairNode {
	t.Helper()
	dir := t.TempDir()
	idx, err := bolt.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	cfg := DefaultConfig()
	cfg.LagLimit = 100 * time.Millisecond
	n, err := Open(t.Context(), cfg, idx, FileStore{Root: filepath.Join(dir, "audio")}, nil, nil, nil)
	if err != nil {
		t.Fatalf("open recorder: %v", err)
	}
	t.Cleanup(func() { n.shutdown() })
	return &pairNode{t: t, n: n, epoch: time.Now().UTC()}
}

// pairCopy is one copy's stream: its chunk j carries call frame start+j-1.
type pairCopy struct {
	p     *pairNode
	s     *source
	copy  int
	start int // call frame of its chunk 1
	seq   uint64
}

// open opens copy k whose stream began at call frame start; the adapter's
// clock said it began clockFrames after the call's epoch (the estimate the
// recorder starts from).
func (p *pairNode) open(k, start, clockFrames int) *pairCopy {
	p.t.Helper()
	info := callrec.StreamInfo{StreamSID: "MZcopy" + string(rune('0'+k)), CallSID: "CA1", TrackNames: []string{"inbound", "outbound"},
		StartedAt: p.epoch.Add(time.Duration(clockFrames) * 20 * time.Millisecond), Adapter: "adapter-" + string(rune('0'+k)),
		Pair: &callrec.StreamPair{Group: "callrec-WT1", Copy: k, Copies: 2}}
	sink, _, err := p.n.OpenStream(p.t.Context(), link.StreamKey{Adapter: info.Adapter, ID: uint32(k)}, link.OpenRequest{Info: info}, nil)
	if err != nil {
		p.t.Fatalf("open copy %d: %v", k, err)
	}
	return &pairCopy{p: p, s: sink.(*source), copy: k, start: start}
}

// send sends the copy's chunk that carries call frame k, on both tracks.
func (c *pairCopy) send(a callAudio, k int) {
	j := k - c.start + 1
	for t := range callrec.NumTracks {
		c.seq++
		c.s.Frame(&callrec.Frame{Seq: c.seq, Track: callrec.Track(t), Chunk: uint32(j), TimestampMS: uint32(j-1) * 20,
			Payload: append([]byte(nil), a.frame(callrec.Track(t), k)...)})
	}
}

func (c *pairCopy) stop() {
	c.seq++
	c.s.Close(c.seq, link.Close{Reason: callrec.EndStop})
}

// finished waits for the recording to be finalized and returns it with its
// two channels.
func (p *pairNode) finished(r *recording) (*callrec.Recording, [callrec.NumTracks][]byte) {
	p.t.Helper()
	p.n.wg.Wait()
	rec, err := p.n.FindRecordingByINUM(p.t.Context(), r.meta.INUM)
	if err != nil {
		p.t.Fatalf("find recording: %v", err)
	}
	if rec.State == callrec.StateRecording {
		p.t.Fatalf("recording %s still recording", rec.INUM)
	}
	b, _, size, err := p.n.OpenAudio(p.t.Context(), rec.INUM)
	if err != nil {
		p.t.Fatalf("open audio: %v", err)
	}
	defer b.Close()
	data := make([]byte, size-HeaderSize)
	if _, err := b.ReadAt(data, HeaderSize); err != nil && err != io.EOF {
		p.t.Fatalf("read audio: %v", err)
	}
	var ch [callrec.NumTracks][]byte
	for i, v := range data {
		ch[i%2] = append(ch[i%2], v)
	}
	return rec, ch
}

func span(a callAudio, t callrec.Track, from, to int) []byte { // call frames [from, to)
	return a[t][from*frameSamples : to*frameSamples]
}

// TestPairMergesCopies: two copies of a call, the second started 3 frames
// later (its adapter's clock says 5), each losing a different stretch. The
// recording holds the whole call from the first copy's start, with no gap;
// the second copy is aligned by its audio (60 ms, not the clock's 100 ms),
// and the accounting says which copy supplied which chunks.
func TestPairMergesCopies(t *testing.T) {
	const frames = 200
	a := newCallAudio(frames, 7)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 3, 5)
	r := c1.s.r
	if c2.s.r != r {
		t.Fatalf("copy 2 opened recording %s, want copy 1's %s", c2.s.r.meta.INUM, r.meta.INUM)
	}
	for k := range frames {
		if k < 50 || k >= 60 {
			c1.send(a, k)
		}
		if k >= 3 && (k < 120 || k >= 130) {
			c2.send(a, k)
		}
		if k%25 == 0 {
			if err := r.flush(false); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
	}
	c1.stop()
	r.mu.Lock()
	closing := r.closing != nil
	r.mu.Unlock()
	if closing {
		t.Fatal("the recording finishes after copy 1's stop while copy 2 still streams")
	}
	c2.stop()
	rec, ch := p.finished(r)

	if rec.State != callrec.StateComplete {
		t.Errorf("state %s (%s), want complete", rec.State, rec.EndReason)
	}
	for tr := range callrec.NumTracks {
		if !bytes.Equal(ch[tr], span(a, callrec.Track(tr), 0, frames)) {
			t.Errorf("track %d: %d bytes, not the call's audio (%d bytes)", tr, len(ch[tr]), frames*frameSamples)
		}
	}
	if rec.Audio.OffsetMS != 0 {
		t.Errorf("offset %d ms, want 0: the file starts at copy 1's start", rec.Audio.OffsetMS)
	}
	first := uint32(pairHeadroom + 1)
	wantRuns := []callrec.SupplyRun{{Copy: 1, FromChunk: first, ToChunk: first + 49}, {Copy: 2, FromChunk: first + 50, ToChunk: first + 59}, {Copy: 1, FromChunk: first + 60, ToChunk: first + frames - 1}}
	for _, ta := range rec.Accounting.Tracks {
		if ta.Expected != frames || ta.Received != frames || ta.Missing != 0 || len(ta.Gaps) != 0 || ta.Duplicates != 0 {
			t.Errorf("%s: expected %d received %d missing %d dups %d gaps %v; want %d, %d, 0, 0, none", ta.Track, ta.Expected, ta.Received, ta.Missing, ta.Duplicates, ta.Gaps, frames, frames)
		}
		if diff := cmp.Diff(wantRuns, ta.Supply); diff != "" {
			t.Errorf("%s supply runs (-want +got):\n%s", ta.Track, diff)
		}
	}
	cps := rec.Accounting.Copies
	if len(cps) != 2 {
		t.Fatalf("copies %+v, want 2", cps)
	}
	want := []callrec.CopyAccounting{
		{Copy: 1, StreamSID: "MZcopy1", Adapter: "adapter-1", Alignment: callrec.AlignOrigin, OffsetMS: 0,
			Received: 2 * (frames - 10), Supplied: 2 * (frames - 10), EndReason: callrec.EndStop},
		{Copy: 2, StreamSID: "MZcopy2", Adapter: "adapter-2", Alignment: callrec.AlignContent, OffsetMS: 60,
			Received: 2 * (frames - 3 - 10), Supplied: 2 * 10, Redundant: 2 * (frames - 3 - 10 - 10), EndReason: callrec.EndStop},
	}
	for i := range cps {
		if cps[i].JoinedAt.IsZero() || cps[i].EndedAt.IsZero() {
			t.Errorf("copy %d: joined %v ended %v, want both set", i+1, cps[i].JoinedAt, cps[i].EndedAt)
		}
		cps[i].JoinedAt, cps[i].EndedAt = time.Time{}, time.Time{}
	}
	if diff := cmp.Diff(want, cps); diff != "" {
		t.Errorf("copies (-want +got):\n%s", diff)
	}
}

// TestPairEarlierCopy: the copy that brings audio first started 5 frames
// after the other. The file starts at the earliest audio, 100 ms before the
// origin's stream time 0, and nothing of either copy is left out.
func TestPairEarlierCopy(t *testing.T) {
	const frames = 120
	a := newCallAudio(frames, 8)
	p := newPairNode(t)
	c1 := p.open(1, 5, 5)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	for k := 5; k < 15; k++ { // copy 1 first, alone for 10 frames
		c1.send(a, k)
	}
	for k := 0; k < frames; k++ {
		c2.send(a, k)
		if k >= 15 {
			c1.send(a, k)
		}
	}
	c1.stop()
	c2.stop()
	rec, ch := p.finished(r)
	for tr := range callrec.NumTracks {
		if !bytes.Equal(ch[tr], span(a, callrec.Track(tr), 0, frames)) {
			t.Errorf("track %d: %d bytes, not the call's audio from frame 0 (%d bytes)", tr, len(ch[tr]), frames*frameSamples)
		}
	}
	if rec.Audio.OffsetMS != -100 {
		t.Errorf("offset %d ms, want -100 (the other copy started 5 frames earlier)", rec.Audio.OffsetMS)
	}
	for _, ta := range rec.Accounting.Tracks {
		if ta.Expected != frames || ta.Missing != 0 || len(ta.Gaps) != 0 {
			t.Errorf("%s: expected %d missing %d gaps %v; want %d, 0, none", ta.Track, ta.Expected, ta.Missing, ta.Gaps, frames)
		}
	}
	if got := rec.Accounting.Copies[1]; got.Alignment != callrec.AlignContent || got.OffsetMS != -100 || got.BeforeStart != 0 {
		t.Errorf("copy 2: %+v; want content alignment at -100 ms, nothing before the start", got)
	}
}

// TestPairCopyLost: copy 1's adapter dies mid-call (its link detaches and
// never comes back); copy 2 carries on. When copy 2 stops, the recording is
// complete without waiting for copy 1's grace, and copy 1 is reported lost.
func TestPairCopyLost(t *testing.T) {
	const frames = 150
	a := newCallAudio(frames, 9)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	for k := range frames {
		if k < 70 {
			c1.send(a, k)
		}
		c2.send(a, k)
	}
	c1.s.Detach(nil) // its connection (nil here) is gone
	c2.stop()
	rec, ch := p.finished(r)
	if rec.State != callrec.StateComplete {
		t.Errorf("state %s (%s), want complete", rec.State, rec.EndReason)
	}
	for tr := range callrec.NumTracks {
		if !bytes.Equal(ch[tr], span(a, callrec.Track(tr), 0, frames)) {
			t.Errorf("track %d: not the whole call", tr)
		}
	}
	cps := rec.Accounting.Copies
	if len(cps) != 2 || cps[0].EndReason != callrec.EndLinkLost || cps[1].EndReason != callrec.EndStop {
		t.Errorf("copies %+v; want copy 1 link_lost, copy 2 stop", cps)
	}
}

// TestPairClockFallback: a copy whose audio matches nowhere uniquely (here:
// digital silence, identical everywhere) is placed by the adapters' clocks
// once alignMaxHeld records are held, and the accounting says so.
func TestPairClockFallback(t *testing.T) {
	const frames = 100
	a := newCallAudio(frames, 10)
	silent := callAudio{bytes.Repeat([]byte{0xFF}, frames*frameSamples), bytes.Repeat([]byte{0xFF}, frames*frameSamples)}
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 4, 4)
	r := c1.s.r
	for k := range frames {
		c1.send(a, k)
		if k >= 4 {
			c2.send(silent, k)
		}
	}
	r.mu.Lock()
	cp := *c2.s.cp
	r.mu.Unlock()
	if cp.align != callrec.AlignClock || cp.offMS != 80 {
		t.Errorf("copy 2 aligned %q at %d ms, want clock at 80 ms", cp.align, cp.offMS)
	}
	c1.stop()
	c2.stop()
	rec, ch := p.finished(r)
	for tr := range callrec.NumTracks {
		if !bytes.Equal(ch[tr], span(a, callrec.Track(tr), 0, frames)) {
			t.Errorf("track %d: not copy 1's audio (copy 2 only brought chunks copy 1 had)", tr)
		}
	}
	if got := rec.Accounting.Copies[1]; got.Supplied != 0 || got.Redundant != 2*(frames-4) {
		t.Errorf("copy 2 %+v: want nothing supplied, %d redundant", got, 2*(frames-4))
	}
}

// TestPairAcksPerCopy: each copy's records are acknowledged on its own
// sequence numbers, once the audio they need is on disk, also while the
// copy is held for alignment.
func TestPairAcksPerCopy(t *testing.T) {
	a := newCallAudio(60, 11)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 2, 2)
	r := c1.s.r
	for k := range 60 {
		c1.send(a, k)
		if k >= 2 {
			c2.send(a, k)
		}
	}
	r.mu.Lock()
	aligned := c2.s.cp.align
	r.mu.Unlock()
	if aligned != callrec.AlignContent {
		t.Fatalf("copy 2 alignment %q, want content", aligned)
	}
	r.mu.Lock()
	r.pair.created = time.Now().Add(-pairWait) // both joined and aligned anyway
	r.mu.Unlock()
	if err := r.flush(true); err != nil {
		t.Fatalf("flush: %v", err)
	}
	r.mu.Lock()
	d1, d2 := c1.s.durable, c2.s.durable
	r.mu.Unlock()
	if d1 != c1.seq || d2 != c2.seq {
		t.Errorf("durable %d and %d, want every record of each copy: %d and %d", d1, d2, c1.seq, c2.seq)
	}
}

// TestPairSeparateReplicas: with dual recording each replica of the pair
// is a merged recording of its own, and an unrelated call's copy never
// joins.
func TestPairSeparateReplicas(t *testing.T) {
	p := newPairNode(t)
	open := func(adapter string, id uint32, call string, replica int) *source {
		info := callrec.StreamInfo{StreamSID: "MZ" + adapter, CallSID: call, TrackNames: []string{"inbound"}, Replica: replica,
			Pair: &callrec.StreamPair{Group: "g", Copy: int(id), Copies: 2}}
		sink, _, err := p.n.OpenStream(t.Context(), link.StreamKey{Adapter: adapter, ID: id}, link.OpenRequest{Info: info}, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return sink.(*source)
	}
	a1, b1 := open("a", 1, "CA1", 1), open("b", 2, "CA1", 1)
	a2 := open("a", 3, "CA1", 2)
	other := open("c", 4, "CA2", 1)
	if a1.r != b1.r {
		t.Error("the copies of replica 1 are in different recordings")
	}
	if a2.r == a1.r || other.r == a1.r {
		t.Error("replica 2 or another call joined replica 1's recording")
	}
}
