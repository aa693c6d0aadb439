package placement_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/placement"
)

// openAll opens n calls (numbered from base, after base streams already
// recorded) and waits until the recorders have a recording for each; it
// returns how many recordings each recorder has.
func openAll(t *testing.T, p *placement.Placer, recs []*recNode, base, n int) map[string]int {
	t.Helper()
	for i := range n {
		openCall(t, p, base+i)
	}
	return awaitCounts(t, recs, base+n)
}

// awaitCounts waits until the recorders hold n recordings in all and
// returns how many each holds.
func awaitCounts(t *testing.T, recs []*recNode, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	callrectest.Eventually(t, waitTimeout, fmt.Sprintf("%d recordings started on the recorders", n), func() bool {
		sum := 0
		for _, r := range recs {
			got[r.name] = r.count(t)
			sum += got[r.name]
		}
		return sum == n
	})
	return got
}

func near(got, want, tol int) bool { return got >= want-tol && got <= want+tol }

// TestSpreadEqualRecorders: 90 streams over three equal recorders land
// 30±3 on each, and the placements counter says the same per recorder.
func TestSpreadEqualRecorders(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m})
	got := openAll(t, p, recs, 0, 90)
	for _, r := range recs {
		if !near(got[r.name], 30, 3) {
			t.Errorf("%s got %d of 90 streams over 3 equal recorders, want 30±3 (all: %v)", r.name, got[r.name], got)
		}
		if c := callrectest.Metric(t, reg, "callrec_placements_total", map[string]string{"recorder": r.name}); int(c) != got[r.name] {
			t.Errorf("callrec_placements_total{recorder=%q} = %v, but it has %d recordings", r.name, c, got[r.name])
		}
	}
	if c := callrectest.Metric(t, reg, "callrec_placement_no_recorder_total", nil); c != 0 {
		t.Errorf("callrec_placement_no_recorder_total = %v with recorders available, want 0", c)
	}
}

// TestSpreadLessFreeGetsFewer: a recorder with less free room gets fewer
// streams, and the placer fills toward equal free room (within ±3).
func TestSpreadLessFreeGetsFewer(t *testing.T) {
	m := newMembers()
	a, b, c := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)
	free := map[string]int{"rec-a": 50, "rec-b": 50, "rec-c": 20}
	for _, r := range []*recNode{a, b, c} {
		m.add(r, free[r.name], 0)
	}
	p, _, _ := newPlacer(t, placement.Config{Recorders: m})
	got := openAll(t, p, []*recNode{a, b, c}, 0, 90)
	if got["rec-c"] >= got["rec-a"] || got["rec-c"] >= got["rec-b"] {
		t.Errorf("placed %v with free room %v: the recorder with less free room must get fewer", got, free)
	}
	// 120 free, 90 placed: 10 left on each.
	for name, f := range free {
		if left := f - got[name]; !near(left, 10, 3) {
			t.Errorf("%s has %d free after placement (%v over free %v), want 10±3 like the others", name, left, got, free)
		}
	}
}

// TestSpreadFreeNotActive ranks by Free, which is already capacity minus
// Active: two recorders with the same Free get the same share however busy
// each already is.
func TestSpreadFreeNotActive(t *testing.T) {
	m := newMembers()
	a, b := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2)
	m.add(a, 40, 60) // capacity 100, 60 busy
	m.add(b, 40, 0)  // capacity 40, idle
	p, _, _ := newPlacer(t, placement.Config{Recorders: m})
	got := openAll(t, p, []*recNode{a, b}, 0, 40)
	if !near(got["rec-a"], 20, 3) || !near(got["rec-b"], 20, 3) {
		t.Errorf("40 streams over two recorders with 40 free each (Active 60 and 0) placed %v, want 20±3 each: "+
			"pick scores Free-Active, counting Active twice (Free is capacity-Active already)", got)
	}
}

// TestSpreadSkipsDraining: a recorder membership does not list (draining)
// gets no new stream, even with the most free room and a link already up.
func TestSpreadSkipsDraining(t *testing.T) {
	m := newMembers()
	a, b, c := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)
	m.add(a, 1000, 0)
	p, _, _ := newPlacer(t, placement.Config{Recorders: m})
	first := openCall(t, p, 0) // a link to rec-a is up
	callrectest.Eventually(t, waitTimeout, "the first stream recorded on rec-a", func() bool { return len(a.segments(t, first.info.StreamSID)) == 1 })
	m.drain("rec-a")
	m.add(b, 100, 0)
	m.add(c, 100, 0)
	got := openAll(t, p, []*recNode{a, b, c}, 1, 60)
	if got["rec-a"] != 1 {
		t.Errorf("draining rec-a got %d new streams (counts %v), want none", got["rec-a"]-1, got)
	}
	if !near(got["rec-b"], 30, 3) || !near(got["rec-c"], 30, 3) {
		t.Errorf("60 streams over rec-b and rec-c placed %v, want 30±3 each", got)
	}
}

// TestSpreadConcurrentBurst: the media adapter opens streams from one
// goroutine per Twilio socket; a burst of simultaneous Opens must spread as
// well as sequential ones ("counting the streams this adapter opened ...
// so a burst spreads"). The fake membership holds the first 90 calls of
// Recorders until all are in, so the Opens really overlap.
func TestSpreadConcurrentBurst(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	m.gate = newGate(90)
	p, _, _ := newPlacer(t, placement.Config{Recorders: m})
	var wg sync.WaitGroup
	for i := range 90 {
		wg.Go(func() { openCall(t, p, i) })
	}
	within(t, waitTimeout, "90 concurrent Opens", wg.Wait)
	got := awaitCounts(t, recs, 90)
	t.Logf("placed %v", got)
	for _, r := range recs {
		if !near(got[r.name], 30, 3) {
			t.Errorf("90 simultaneous Opens over 3 equal recorders placed %v, want 30±3 each: pick reads the "+
				"per-link count (and finds no link yet), Open increments it later, so concurrent Opens all pick alike", got)
			break
		}
	}
}

// TestOpenDoesNotBlock: Open returns at once even when no recorder is
// reachable (the media adapter's read loop calls it).
func TestOpenDoesNotBlock(t *testing.T) {
	m := newMembers()
	nw := newNetwork()
	a := startRecorder(t, "rec-a", 1)
	m.add(a, 100, 0)
	nw.cut(a.addr, true)
	p, _, _ := newPlacer(t, placement.Config{Recorders: m, Dial: nw.Dial})
	start := time.Now()
	for i := range 5 {
		openCall(t, p, i).send(10)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("5 Opens and 100 frames toward an unreachable recorder took %v; Open and Frame must not block", d)
	}
	if p.Active() != 5 {
		t.Errorf("Active() = %d, want 5", p.Active())
	}
}
