package recorder

import (
	"testing"
)

// Both copies miss call frames 100..109 (2000..2200 ms of the origin's
// stream time). The gap must say so; the consumers compute the file offset
// as StartMS - Audio.OffsetMS.
func TestPairRegressPairGapTimes(t *testing.T) {
	const frames = 200
	a := newCallAudio(frames, 3)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	for k := range frames {
		if k >= 100 && k < 110 {
			continue
		}
		c1.send(a, k)
		c2.send(a, k)
	}
	c1.stop()
	c2.stop()
	rec, _ := p.finished(r)
	t.Logf("audio offset %d ms", rec.Audio.OffsetMS)
	for _, ta := range rec.Accounting.Tracks {
		t.Logf("%s gaps %+v", ta.Track, ta.Gaps)
		if len(ta.Gaps) != 1 {
			t.Fatalf("gaps %+v", ta.Gaps)
		}
		g := ta.Gaps[0]
		if g.StartMS != 2000 || g.StartMS-rec.Audio.OffsetMS != 2000 {
			t.Errorf("%s: gap StartMS %d (file offset %d ms), want 2000 / 2000", ta.Track, g.StartMS, g.StartMS-rec.Audio.OffsetMS)
		}
	}
}

// Both copies lose the call's first 10 frames: a single stream lists
// chunks 1..10 as missing; a merged recording says nothing.
func TestPairRegressPairLeadingLossUnaccounted(t *testing.T) {
	const frames = 100
	a := newCallAudio(frames, 4)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	c2 := p.open(2, 0, 0)
	r := c1.s.r
	for k := 10; k < frames; k++ {
		c1.send(a, k)
		c2.send(a, k)
	}
	c1.stop()
	c2.stop()
	rec, _ := p.finished(r)
	for _, ta := range rec.Accounting.Tracks {
		t.Logf("%s: expected %d received %d missing %d gaps %+v; offset %d", ta.Track, ta.Expected, ta.Received, ta.Missing, ta.Gaps, rec.Audio.OffsetMS)
		if ta.Missing != 10 {
			t.Errorf("%s: missing %d, want 10 (chunks 1..10 never arrived)", ta.Track, ta.Missing)
		}
	}
}
