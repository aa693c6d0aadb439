package recorder

import (
	"bytes"
	"testing"
	"time"

	"callrec"
)

// Copy 2 started earlier than copy 1 but its adapter reaches the recorder
// after pairWait (reconnect backoff, failover replay): the file has started
// at copy 1's first frame; copy 2's earlier audio, which no copy wrote,
// cannot go into it. It must not vanish silently: it is counted as the
// copy's before_start and reported missing in the track accounting, with
// its gap.
func TestPairRegressPairLateEarlierCopyAckedDropped(t *testing.T) {
	const frames = 200
	a := newCallAudio(frames, 12)
	p := newPairNode(t)
	c1 := p.open(1, 20, 20)
	r := c1.s.r
	for k := 20; k < 60; k++ {
		c1.send(a, k)
	}
	r.mu.Lock()
	r.pair.created = time.Now().Add(-pairWait)
	r.mu.Unlock()
	if err := r.flush(false); err != nil {
		t.Fatal(err)
	}
	c2 := p.open(2, 0, 0)
	for k := 0; k < frames; k++ {
		c2.send(a, k)
		if k >= 60 {
			c1.send(a, k)
		}
	}
	if err := r.flush(false); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	d2, before := c2.s.durable, c2.s.cp.before
	r.mu.Unlock()
	c1.stop()
	c2.stop()
	rec, ch := p.finished(r)
	lost := 0
	for k := 0; k < 20; k++ {
		if !bytes.Contains(ch[0], a.frame(0, k)) {
			lost++
		}
	}
	t.Logf("copy 2 durable seq %d (sent %d), before_start %d; offset %d ms; copy 2 %+v", d2, c2.seq, before, rec.Audio.OffsetMS, rec.Accounting.Copies[1])
	if lost != 20 || before != 40 {
		t.Errorf("%d of copy 2's 20 early frames not in the file, before_start %d; want 20 and 40 (both tracks)", lost, before)
	}
	for _, ta := range rec.Accounting.Tracks {
		t.Logf("%s: first %d last %d expected %d received %d missing %d gaps %+v samples %d, file samples %d", ta.Track, ta.FirstChunk, ta.LastChunk, ta.Expected, ta.Received, ta.Missing, ta.Gaps, ta.Samples, len(ch[0]))
		if ta.Missing != 20 || len(ta.Gaps) != 1 || ta.Gaps[0].Frames != 20 || ta.Gaps[0].Cause != callrec.GapMissing || ta.Gaps[0].StartMS != -400 || ta.Gaps[0].EndMS != 0 {
			t.Errorf("%s: missing %d, gaps %+v; want the 20 early frames reported missing from -400 to 0 ms", ta.Track, ta.Missing, ta.Gaps)
		}
	}
}
