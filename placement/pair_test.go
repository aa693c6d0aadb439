package placement_test

import (
	"fmt"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/placement"
)

// nodeOf waits until s has its recorder's answer and returns the node its
// INUM names.
func nodeOf(t testing.TB, s *link.Stream, what string) uint16 {
	t.Helper()
	callrectest.Eventually(t, waitTimeout, what+" opened on a recorder", func() bool { return s.INUM() != "" })
	return s.INUM().Node()
}

func names(recs []*recNode) map[uint16]string {
	m := map[uint16]string{}
	for _, r := range recs {
		m[r.id] = r.name
	}
	return m
}

// pairInfo is copy c of pair group of call n, as adapter sees it.
func pairInfo(n int, group string, copyN int, adapter string) callrec.StreamInfo {
	info := streamInfo(n)
	info.StreamSID = fmt.Sprintf("MZ%030x%02d", n, copyN)
	info.Adapter = adapter
	info.Pair = &callrec.StreamPair{Group: group, Copy: copyN, Copies: 2}
	return info
}

// TestPairPlacementAgrees: the two copies of a pair reach two adapters
// that never talk to each other; with the same membership view both put
// their copy on the same recorder, whatever each has placed before (their
// local counts differ), and the pairs spread over the recorders. With dual
// recording, both put replica 1 on the pair's first recorder and replica 2
// on its second.
func TestPairPlacementAgrees(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	byID := names(recs)
	p1, reg1, _ := newPlacer(t, placement.Config{AdapterID: "adapter-1", Recorders: m})
	p2, _, _ := newPlacer(t, placement.Config{AdapterID: "adapter-2", Recorders: m})
	// Skew adapter-1's own counts: it placed streams adapter-2 knows
	// nothing of.
	for i := range 7 {
		openCall(t, p1, 1000+i)
	}

	const pairs = 12
	used := map[uint16]int{}
	for i := range pairs {
		group := fmt.Sprintf("callrec-%d", i)
		s1 := p1.Open(pairInfo(i, group, 1, "adapter-1"))
		s2 := p2.Open(pairInfo(i, group, 2, "adapter-2"))
		n1, n2 := nodeOf(t, s1, "copy 1"), nodeOf(t, s2, "copy 2")
		if n1 != n2 {
			t.Errorf("pair %s: copy 1 on %s, copy 2 on %s; want both on the same recorder", group, byID[n1], byID[n2])
		}
		used[n1]++
	}
	if len(used) < 2 {
		t.Errorf("%d pairs all on %v: the ranking does not depend on the call", pairs, used)
	}
	if got := callrectest.Metric(t, reg1, "callrec_placement_decisions_total", map[string]string{"kind": "pair"}); got != pairs {
		t.Errorf("adapter-1 callrec_placement_decisions_total{kind=pair} = %v, want %d", got, pairs)
	}

	for i := range pairs {
		group := fmt.Sprintf("dual-%d", i)
		r1 := p1.OpenReplicas(pairInfo(100+i, group, 1, "adapter-1"), 2)
		r2 := p2.OpenReplicas(pairInfo(100+i, group, 2, "adapter-2"), 2)
		if len(r1) != 2 || len(r2) != 2 {
			t.Fatalf("OpenReplicas gave %d and %d streams with three recorders, want 2 each", len(r1), len(r2))
		}
		a1, a2 := nodeOf(t, r1[0], "copy 1 replica 1"), nodeOf(t, r1[1], "copy 1 replica 2")
		b1, b2 := nodeOf(t, r2[0], "copy 2 replica 1"), nodeOf(t, r2[1], "copy 2 replica 2")
		if a1 != b1 || a2 != b2 || a1 == a2 {
			t.Errorf("dual pair %s: copy 1's replicas on %s and %s, copy 2's on %s and %s; want replica 1 of both on one recorder, replica 2 of both on another",
				group, byID[a1], byID[a2], byID[b1], byID[b2])
		}
		// A replica opened alone goes where OpenReplicas puts it.
		lone := pairInfo(100+i, group, 2, "adapter-2")
		lone.StreamSID, lone.Replica = fmt.Sprintf("MZ%030x%02d", 100+i, 98), 2
		if n := nodeOf(t, p2.Open(lone), "lone replica 2"); n != a2 {
			t.Errorf("dual pair %s: Open of replica 2 alone went to %s, OpenReplicas put replica 2 on %s", group, byID[n], byID[a2])
		}
	}
}

// TestPairPlacementFollowsMembership: both adapters see a recorder leave;
// they still agree, and only the pairs ranked on it move (rendezvous).
func TestPairPlacementFollowsMembership(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	p1, _, _ := newPlacer(t, placement.Config{AdapterID: "adapter-1", Recorders: m})
	p2, _, _ := newPlacer(t, placement.Config{AdapterID: "adapter-2", Recorders: m})
	const pairs = 12
	before := map[int]uint16{}
	for i := range pairs {
		info := pairInfo(i, "g", 1, "adapter-1")
		info.StreamSID = fmt.Sprintf("MZ%030x%02d", i, 99) // an earlier stream of the call
		c := &call{t: t, n: i, info: info, s: p1.Open(info)}
		before[i] = nodeOf(t, c.s, "before")
		c.stop()
		c.finish(t)
	}
	m.drain("rec-c")
	moved := 0
	for i := range pairs {
		s1 := p1.Open(pairInfo(i, "g", 1, "adapter-1"))
		s2 := p2.Open(pairInfo(i, "g", 2, "adapter-2"))
		n1, n2 := nodeOf(t, s1, "copy 1"), nodeOf(t, s2, "copy 2")
		if n1 != n2 || n1 == recs[2].id {
			t.Errorf("call %d after rec-c drained: copies on nodes %d and %d; want the same, not rec-c", i, n1, n2)
		}
		if before[i] != recs[2].id && n1 != before[i] {
			t.Errorf("call %d was on node %d, moved to %d although only rec-c left", i, before[i], n1)
		}
		if n1 != before[i] {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no pair was on rec-c before it drained: the test shows nothing")
	}
}

// TestOpenReplicas: dual recording of unpaired streams: each stream's two
// replicas go to two different recorders, numbered 1 and 2, and the
// streams still spread. With one recorder, one replica; with none, one
// replica that waits in retention.
func TestOpenReplicas(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m})
	load := map[uint16]int{}
	var calls []*call
	for i := range 9 {
		ss := p.OpenReplicas(streamInfo(i), 2)
		if len(ss) != 2 {
			t.Fatalf("OpenReplicas(2) gave %d streams with three recorders", len(ss))
		}
		n1, n2 := nodeOf(t, ss[0], "replica 1"), nodeOf(t, ss[1], "replica 2")
		if n1 == n2 {
			t.Errorf("stream %d: both replicas on node %d", i, n1)
		}
		load[n1]++
		load[n2]++
		for _, s := range ss {
			c := &call{t: t, n: i, info: streamInfo(i), s: s}
			c.send(5)
			c.stop()
			calls = append(calls, c)
		}
	}
	for _, r := range recs {
		if load[r.id] != 6 {
			t.Errorf("18 replicas over 3 equal recorders: %v by node, want 6 each", load)
			break
		}
	}
	for _, c := range calls {
		c.finish(t)
	}
	for i := range 9 {
		var got []int
		for _, r := range recs {
			for _, rec := range r.segments(t, streamInfo(i).StreamSID) {
				got = append(got, rec.Stream.Replica)
				checkWhole(t, r, rec, calls[2*i])
			}
		}
		if len(got) != 2 || got[0]+got[1] != 3 || got[0] == got[1] {
			t.Errorf("stream %d recorded as replicas %v, want 1 and 2", i, got)
		}
	}
	for kind, want := range map[string]float64{"single": 9, "replica": 9} {
		if got := callrectest.Metric(t, reg, "callrec_placement_decisions_total", map[string]string{"kind": kind}); got != want {
			t.Errorf("callrec_placement_decisions_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}

	m.drain("rec-b")
	m.drain("rec-c")
	if ss := p.OpenReplicas(streamInfo(50), 2); len(ss) != 1 || nodeOf(t, ss[0], "the only replica") != recs[0].id {
		t.Errorf("OpenReplicas(2) with one recorder: %d streams, want 1 on rec-a", len(ss))
	}
	m.drain("rec-a")
	ss := p.OpenReplicas(streamInfo(51), 2)
	if len(ss) != 1 {
		t.Fatalf("OpenReplicas(2) with no recorder: %d streams, want 1 waiting", len(ss))
	}
	if got := callrectest.Metric(t, reg, "callrec_placement_no_recorder_total", nil); got != 1 {
		t.Errorf("callrec_placement_no_recorder_total = %v, want 1", got)
	}
}

// TestTiesSpreadAcrossAdapters: many adapters each open a stream at the
// same moment over equally loaded recorders. Ties broken by recorder name
// send every one of them to the same recorder (a herd); broken by a hash
// of adapter and recorder, they spread.
func TestTiesSpreadAcrossAdapters(t *testing.T) {
	m := newMembers()
	recs := []*recNode{startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3)}
	for _, r := range recs {
		m.add(r, 100, 0)
	}
	byID := names(recs)
	got := map[string]int{}
	for i := range 12 {
		p, _, _ := newPlacer(t, placement.Config{AdapterID: fmt.Sprintf("adapter-%d", i+1), Recorders: m})
		got[byID[nodeOf(t, openCall(t, p, i).s, "stream")]]++
	}
	t.Logf("12 adapters, one stream each, over 3 equal recorders: %v", got)
	for _, r := range recs {
		if got[r.name] == 0 {
			t.Errorf("12 adapters placing one stream each over 3 equal recorders: %v; %s got none: ties herd", got, r.name)
		}
	}
}

// TestFailoverSpreadsAcrossAdapters: three adapters have their streams on
// rec-a when it dies; the survivors are equally loaded. Each adapter's link
// moves on its own, and not all to the same survivor.
func TestFailoverSpreadsAcrossAdapters(t *testing.T) {
	m := newMembers()
	a := startRecorder(t, "rec-a", 1)
	survivors := []*recNode{startRecorder(t, "rec-b", 2), startRecorder(t, "rec-c", 3), startRecorder(t, "rec-d", 4)}
	m.add(a, 1000, 0)
	for _, r := range survivors {
		m.add(r, 100, 0)
	}
	byID := names(append([]*recNode{a}, survivors...))
	var calls []*call
	for i := range 3 {
		p, _, _ := newPlacer(t, placement.Config{AdapterID: fmt.Sprintf("adapter-%d", i+1), Recorders: m, FailoverAfter: 5 * time.Second})
		c := openCall(t, p, i)
		c.send(10)
		if n := nodeOf(t, c.s, "stream"); n != a.id {
			t.Fatalf("adapter-%d placed on %s, want rec-a (most free room)", i+1, byID[n])
		}
		calls = append(calls, c)
	}
	for _, c := range calls {
		callrectest.Eventually(t, waitTimeout, "audio acknowledged by rec-a", func() bool { return c.s.Acked() > 0 })
	}
	a.kill()
	m.remove("rec-a")
	moved := map[string]int{}
	for i, c := range calls {
		c.send(10)
		var n uint16
		callrectest.Eventually(t, waitTimeout, fmt.Sprintf("adapter-%d's stream continued on a survivor", i+1), func() bool {
			n = c.s.INUM().Node()
			return n != a.id && n != 0
		})
		moved[byID[n]]++
		c.stop()
		if reply := c.finish(t); reply.State != callrec.StateComplete {
			t.Errorf("adapter-%d's stream finished %q, want complete", i+1, reply.State)
		}
	}
	t.Logf("links of 3 adapters moved to %v", moved)
	if len(moved) < 2 {
		t.Errorf("rec-a died under 3 adapters, survivors equally loaded: every link moved to the same survivor %v (a herd)", moved)
	}
}
