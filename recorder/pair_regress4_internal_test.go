package recorder

import (
	"testing"
	"time"

	"callrec"
	"callrec/internal/link"
)

// Copy 1's adapter link is down longer than ResumeGrace; the merged
// recording goes on with copy 2 and marks copy 1 lost. When copy 1's
// adapter comes back while the recording runs, the copy carries on: what
// it replays fills copy 2's gap.
func TestPairRegressPairResumeAfterLost(t *testing.T) {
	const frames = 150
	a := newCallAudio(frames, 6)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	for k := range 50 {
		c1.send(a, k)
	}
	for k := range frames {
		if k < 60 || k >= 80 {
			c2.send(a, k)
		}
	}
	c1.s.Detach(nil)
	r.mu.Lock()
	c1.s.detachedAt = time.Now().Add(-p.n.cfg.ResumeGrace - time.Second)
	r.mu.Unlock()
	p.n.flushAll()
	r.mu.Lock()
	ended, reason := c1.s.ended(), c1.s.endReason
	r.mu.Unlock()
	t.Logf("copy 1 ended %v (%s); recording closing %v", ended, reason, r.closing != nil)

	sink, rep, err := p.n.OpenStream(t.Context(), link.StreamKey{Adapter: "adapter-1", ID: 1}, link.OpenRequest{Info: c1.s.info}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reopen: resumed %v last seq %d, same source %v", rep.Resumed, rep.LastSeq, sink == c1.s)
	for k := 50; k < 100; k++ { // the adapter replays what it retained
		c1.send(a, k)
	}
	r.mu.Lock()
	pend := c1.s.pending.len()
	recv := c1.s.cp.received
	r.mu.Unlock()
	t.Logf("after replay: copy 1 received %d, pending acks %d, lastSeq %d vs sent %d", recv, pend, c1.s.lastSeq, c1.seq)
	c1.stop()
	c2.stop()
	rec, _ := p.finished(r)
	if len(rec.Accounting.Copies) != 2 || rec.Accounting.Copies[0].EndReason != callrec.EndStop {
		t.Errorf("copies %+v: want copy 1 back and ended with stop", rec.Accounting.Copies)
	}
	for _, ta := range rec.Accounting.Tracks {
		t.Logf("%s: missing %d gaps %+v", ta.Track, ta.Missing, ta.Gaps)
		if ta.Missing != 0 {
			t.Errorf("%s: %d frames missing though copy 1 delivered them after resuming", ta.Track, ta.Missing)
		}
	}
}
