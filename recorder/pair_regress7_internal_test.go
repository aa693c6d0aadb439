package recorder

import (
	"testing"
	"time"
)

// A redundant frame (another copy already brought its chunk) is queued for
// acknowledgement with end 0: it is acknowledged at the next flush even
// when the supplying copy's audio for that chunk is still in the window.
func TestPairRegressPairRedundantAckedBeforeDurable(t *testing.T) {
	const frames = 100
	a := newCallAudio(frames, 14)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	seqOf := map[uint64]int{} // copy 2 seq -> call frame
	for k := range frames {
		if k == 30 {
			continue // neither copy has it: a gap holds back the flush point
		}
		c1.send(a, k)
		c2.send(a, k)
		seqOf[c2.seq-1], seqOf[c2.seq] = k, k
	}
	r.mu.Lock()
	r.pair.created = time.Now().Add(-pairWait)
	r.mu.Unlock()
	if err := r.flush(false); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	base, durable := r.win.base, c2.s.durable
	r.mu.Unlock()
	bad := 0
	for seq, k := range seqOf {
		end := int64(pairHeadroom+k+1) * frameSamples
		if seq <= durable && end > base {
			bad++
		}
	}
	t.Logf("on disk up to window position %d (call frame %d); copy 2 durable seq %d of %d", base, base/frameSamples-pairHeadroom, durable, c2.seq)
	if bad > 0 {
		t.Errorf("%d records of copy 2 count as durable whose audio is not on disk", bad)
	}
}
