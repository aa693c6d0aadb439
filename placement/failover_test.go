package placement_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/placement"
	"callrec/recorder"
)

// feed sends one chunk on each call every tick until stop is closed, as
// Twilio paces media while the recorder fails under it.
func feed(calls []*call, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					c.send(1)
				}
			}
		})
	}
	return wg.Wait
}

// TestFailoverRecorderDies: streams are open on rec-a and rec-b with frames
// flowing; rec-a dies and membership drops it. rec-a's link moves to rec-b
// at once (well before FailoverAfter): each of its streams ends as two
// segments, interrupted on rec-a and complete on rec-b continuing it, that
// together hold every chunk sent. rec-b's own streams are untouched.
func TestFailoverRecorderDies(t *testing.T) {
	t.Parallel()
	testFailover(t, false, 5*time.Second)
}

// TestFailoverRecorderUnreachable: rec-a dies but membership still calls it
// alive: the link moves to rec-b only after FailoverAfter of failed dials.
func TestFailoverRecorderUnreachable(t *testing.T) {
	t.Parallel()
	testFailover(t, true, 300*time.Millisecond)
}

func testFailover(t *testing.T, stillAlive bool, failoverAfter time.Duration) {
	m := newMembers()
	a, b := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2)
	m.add(a, 100, 0)
	m.add(b, 100, 0)
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: failoverAfter})

	// Equal recorders: the first stream goes to whichever wins the tie
	// (by a hash of the adapter id), then they alternate: two on each.
	calls := make([]*call, 4)
	for i := range calls {
		calls[i] = openCall(t, p, i)
		calls[i].send(25)
	}
	callrectest.Eventually(t, waitTimeout, "every stream opened on a recorder, with audio acknowledged", func() bool {
		for _, c := range calls {
			if c.s.Acked() == 0 || c.s.INUM() == "" {
				return false
			}
		}
		return true
	})
	var onA, onB []*call
	for _, c := range calls {
		switch c.s.INUM().Node() {
		case a.id:
			onA = append(onA, c)
		case b.id:
			onB = append(onB, c)
		default:
			t.Fatalf("%s opened on node %d, neither rec-a nor rec-b", c.info.StreamSID, c.s.INUM().Node())
		}
	}
	if len(onA) != 2 || len(onB) != 2 || calls[0].s.INUM().Node() == calls[1].s.INUM().Node() ||
		calls[0].s.INUM().Node() != calls[2].s.INUM().Node() {
		t.Fatalf("4 streams over two equal recorders: %d on rec-a, %d on rec-b; want them alternating, 2 on each", len(onA), len(onB))
	}
	for _, c := range onA {
		if len(a.segments(t, c.info.StreamSID)) != 1 {
			t.Fatalf("%s: INUM on rec-a, but rec-a has %d recordings of it", c.info.StreamSID, len(a.segments(t, c.info.StreamSID)))
		}
	}
	for _, c := range onB {
		if len(b.segments(t, c.info.StreamSID)) != 1 {
			t.Fatalf("%s: INUM on rec-b, but rec-b has %d recordings of it", c.info.StreamSID, len(b.segments(t, c.info.StreamSID)))
		}
	}
	for _, name := range []string{"rec-a", "rec-b"} {
		if got := callrectest.Metric(t, reg, "callrec_placements_total", map[string]string{"recorder": name}); got != 2 {
			t.Errorf("callrec_placements_total{recorder=%q} = %v, want 2", name, got)
		}
	}

	stop := make(chan struct{})
	wait := feed(calls, stop)
	// Kill rec-a with frames in flight: received, some not yet synced and
	// acknowledged, some still to be sent.
	callrectest.Eventually(t, waitTimeout, "frames flowing into rec-a", func() bool {
		for _, c := range onA {
			segs := a.segments(t, c.info.StreamSID)
			if len(segs) != 1 || len(segs[0].Accounting.Tracks) == 0 || segs[0].Accounting.Tracks[0].LastChunk < 40 {
				return false
			}
		}
		return true
	})
	killStart := time.Now()
	a.kill()
	if !stillAlive {
		m.remove("rec-a")
	}
	callrectest.Eventually(t, waitTimeout, "rec-a's streams continued on rec-b", func() bool {
		for _, c := range onA {
			if len(b.segments(t, c.info.StreamSID)) != 1 {
				return false
			}
		}
		return true
	})
	close(stop)
	wait()
	for _, c := range calls {
		c.send(10)
		c.stop()
	}
	for _, c := range calls {
		if reply := c.finish(t); reply.State != callrec.StateComplete {
			t.Errorf("%s finished %q, want complete", c.info.StreamSID, reply.State)
		}
	}

	for _, c := range onB {
		if segs := a.segments(t, c.info.StreamSID); len(segs) != 0 {
			t.Errorf("rec-b's stream %s has %d segments on rec-a", c.info.StreamSID, len(segs))
		}
		segs := b.segments(t, c.info.StreamSID)
		if len(segs) != 1 {
			t.Fatalf("rec-b's stream %s has %d segments on rec-b, want 1 (it never moved)", c.info.StreamSID, len(segs))
		}
		checkWhole(t, b, segs[0], c)
	}
	for _, c := range onA {
		sa, sb := a.segments(t, c.info.StreamSID), b.segments(t, c.info.StreamSID)
		if len(sa) != 1 || len(sb) != 1 {
			t.Fatalf("%s: %d segments on rec-a, %d on rec-b; want one on each", c.info.StreamSID, len(sa), len(sb))
		}
		checkSplit(t, a, sa[0], b, sb[0], c)
		if reply := c.finish(t); reply.INUM != sb[0].INUM {
			t.Errorf("%s: close reply for %s, want the continuation %s", c.info.StreamSID, reply.INUM, sb[0].INUM)
		}
		moved := sb[0].StartedAt.Sub(killStart)
		if stillAlive && moved < failoverAfter {
			t.Errorf("%s moved to rec-b %v after rec-a died, before FailoverAfter %v while membership still calls rec-a alive",
				c.info.StreamSID, moved, failoverAfter)
		}
		if !stillAlive && moved >= failoverAfter {
			t.Errorf("%s moved to rec-b %v after rec-a died; membership dropped rec-a, so it must not wait FailoverAfter %v",
				c.info.StreamSID, moved, failoverAfter)
		}
		t.Logf("%s: %s has chunks 1..%d, %s continues from %d (offset %d ms), moved after %v", c.info.StreamSID,
			sa[0].INUM, sa[0].Accounting.Tracks[0].LastChunk, sb[0].INUM, sb[0].Accounting.Tracks[0].FirstChunk, sb[0].Audio.OffsetMS, moved)
	}
	if got := callrectest.Metric(t, reg, "callrec_failovers_total", nil); got != 1 {
		t.Errorf("callrec_failovers_total = %v after one link moved, want 1", got)
	}
	if got := callrectest.Metric(t, reg, "callrec_placements_total", map[string]string{"recorder": "rec-b"}); got != 2 {
		t.Errorf("callrec_placements_total{recorder=\"rec-b\"} = %v, want 2: a failover is no placement", got)
	}
	if n := p.Active(); n != 0 {
		t.Errorf("Active() = %d after every stream finished, want 0", n)
	}
}

// checkSplit checks a stream recorded as two segments: first on ra,
// interrupted, from chunk 1 without a gap; second on rb, complete, linked to
// the first, starting no later than the chunk after the first's last and
// without a gap to the end: no chunk lost. The audio of both is what was
// sent.
func checkSplit(t *testing.T, ra *recNode, first *callrec.Recording, rb *recNode, second *callrec.Recording, c *call) {
	t.Helper()
	sid := c.info.StreamSID
	if first.State != callrec.StateInterrupted || first.PreviousINUM != "" || first.Node != ra.id {
		t.Errorf("%s first segment %s: state %q (%s), previous %q, node %d; want interrupted on node %d",
			sid, first.INUM, first.State, first.EndReason, first.PreviousINUM, first.Node, ra.id)
	}
	if second.State != callrec.StateComplete || second.PreviousINUM != first.INUM || second.Node != rb.id {
		t.Errorf("%s second segment %s: state %q (%s), previous %q, node %d; want complete, continuing %s, on node %d",
			sid, second.INUM, second.State, second.EndReason, second.PreviousINUM, second.Node, first.INUM, rb.id)
	}
	if len(first.Accounting.Tracks) != 2 || len(second.Accounting.Tracks) != 2 {
		t.Fatalf("%s: tracks %d and %d, want 2 in each segment", sid, len(first.Accounting.Tracks), len(second.Accounting.Tracks))
	}
	for i := range 2 {
		fa, sa := first.Accounting.Tracks[i], second.Accounting.Tracks[i]
		if fa.FirstChunk != 1 || fa.Missing != 0 || fa.LastChunk == 0 {
			t.Errorf("%s %s on %s: chunks %d..%d with %d missing; want from 1, none missing", sid, fa.Track, ra.name, fa.FirstChunk, fa.LastChunk, fa.Missing)
		}
		if sa.FirstChunk > fa.LastChunk+1 || sa.Missing != 0 || sa.LastChunk != c.chunks {
			t.Errorf("%s %s: first segment ends at chunk %d, second holds %d..%d with %d missing (sent 1..%d): chunks lost",
				sid, fa.Track, fa.LastChunk, sa.FirstChunk, sa.LastChunk, sa.Missing, c.chunks)
		}
		checkAudio(t, ra, first, c, callrec.Track(i), 1, fa.LastChunk)
		checkAudio(t, rb, second, c, callrec.Track(i), sa.FirstChunk, sa.LastChunk)
	}
}

// TestFailoverRecorderBlackholed: rec-a stops answering at the network
// level (a partition: SYNs dropped, so a dial hangs instead of being
// refused) while membership still calls it alive. The link must still move
// to rec-b about FailoverAfter later; a dial without a deadline hangs for
// the OS connect timeout (minutes) and FailoverAfter never comes.
func TestFailoverRecorderBlackholed(t *testing.T) {
	t.Parallel()
	m := newMembers()
	nw := newNetwork()
	a, b := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2)
	m.add(a, 100, 0)
	p, _, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: 300 * time.Millisecond, Dial: nw.Dial})
	c := openCall(t, p, 0)
	c.send(25)
	callrectest.Eventually(t, waitTimeout, "audio acknowledged by rec-a", func() bool { return c.s.Acked() > 0 })
	m.add(b, 100, 0)
	nw.cut(a.addr, true)
	c.send(25)
	waitUntil(t, 3*time.Second, func() bool { return len(b.segments(t, c.info.StreamSID)) == 1 }, func() string {
		return fmt.Sprintf("rec-a black-holed with FailoverAfter 300ms and rec-b available: the stream never moved "+
			"(%d dials to rec-a, %d to rec-b): a dial to the unreachable recorder is not bounded by FailoverAfter",
			nw.dialCount(a.addr), nw.dialCount(b.addr))
	})
	c.send(5)
	c.stop()
	if reply := c.finish(t); reply.State != callrec.StateComplete {
		t.Errorf("finished %q, want complete", reply.State)
	}
}

// TestFailoverRecorderHungHandshake: rec-a's address accepts TCP
// connections (the kernel does) but the recorder never answers the link
// handshake (the process is stuck) while membership calls it alive. Each
// attempt fails after the link's 10 s handshake timeout; the link must then
// move to rec-b, not retry rec-a forever because the TCP dial itself
// succeeded.
func TestFailoverRecorderHungHandshake(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the link's 10 s handshake timeout")
	}
	t.Parallel()
	hung := hungListener(t)
	m := newMembers()
	b := startRecorder(t, "rec-b", 2)
	m.m["rec-a"] = &member{rec: placement.Recorder{Name: "rec-a", Addr: hung, Free: 1000}}
	p, _, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: 300 * time.Millisecond})
	c := openCall(t, p, 0)
	c.send(25)
	m.add(b, 100, 0)
	waitUntil(t, 14*time.Second, func() bool { return len(b.segments(t, c.info.StreamSID)) == 1 }, func() string {
		return "rec-a accepts TCP but never answers HELLO (FailoverAfter 300ms, link handshake timeout 10s): " +
			"the stream is still not on rec-b: failingAt is reset by every successful TCP dial, so it never ages"
	})
	c.send(5)
	c.stop()
	if reply := c.finish(t); reply.State != callrec.StateComplete {
		t.Errorf("finished %q, want complete", reply.State)
	}
	segs := b.segments(t, c.info.StreamSID)
	if len(segs) != 1 {
		t.Fatalf("%d segments on rec-b, want 1", len(segs))
	}
	checkWhole(t, b, segs[0], c)
}

// TestFailoverRecorderStopsAcknowledging: rec-a is up and answers the link
// but never acknowledges (its disk is stuck: here a flush interval of an
// hour), while membership calls it alive. The link drops the connection
// after link.DefaultAckTimeout (15 s) "so the reconnect can replay
// elsewhere"; placement must then move it to rec-b, which gets every frame
// (none was acknowledged) in a segment continuing rec-a's.
func TestFailoverRecorderStopsAcknowledging(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the link's 15 s ack timeout")
	}
	t.Parallel()
	m := newMembers()
	a := startRecorderWith(t, "rec-a", 1, func(c *recorder.Config) { c.FlushInterval = time.Hour })
	b := startRecorder(t, "rec-b", 2)
	m.add(a, 1000, 0)
	m.add(b, 100, 0)
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: 300 * time.Millisecond})
	c := openCall(t, p, 0)
	c.send(25)
	callrectest.Eventually(t, waitTimeout, "the stream open on rec-a", func() bool { return c.s.INUM() != "" })
	first := c.s.INUM()
	if first.Node() != a.id {
		t.Fatalf("stream opened on node %d, want rec-a (%d)", first.Node(), a.id)
	}
	waitUntil(t, link.DefaultAckTimeout+6*time.Second, func() bool { return len(b.segments(t, c.info.StreamSID)) == 1 }, func() string {
		return fmt.Sprintf("rec-a never acknowledges; %v after the link's ack timeout (%v) the stream is not on rec-b "+
			"(failovers %v, acked %d): the link drops the connection, but dial redials rec-a since its TCP dial succeeds",
			6*time.Second, link.DefaultAckTimeout, callrectest.Metric(t, reg, "callrec_failovers_total", nil), c.s.Acked())
	})
	c.send(5)
	c.stop()
	if reply := c.finish(t); reply.State != callrec.StateComplete {
		t.Errorf("finished %q, want complete", reply.State)
	}
	segs := b.segments(t, c.info.StreamSID)
	if len(segs) != 1 {
		t.Fatalf("%d segments on rec-b, want 1", len(segs))
	}
	if segs[0].PreviousINUM != first {
		t.Errorf("rec-b's segment continues %q, want rec-a's %s", segs[0].PreviousINUM, first)
	}
	for i, ta := range segs[0].Accounting.Tracks {
		if ta.FirstChunk != 1 || ta.LastChunk != c.chunks || ta.Missing != 0 {
			t.Errorf("track %s on rec-b: chunks %d..%d, %d missing; want 1..%d (nothing was acknowledged)", ta.Track, ta.FirstChunk, ta.LastChunk, ta.Missing, c.chunks)
		}
		checkAudio(t, b, segs[0], c, callrec.Track(i), 1, c.chunks)
	}
}

// TestLinkReturnsToOnlyRecorder: with a single recorder, an outage longer
// than FailoverAfter (a restart, a partition) must not strand the link: when
// the recorder is reachable again the link reconnects and the stream resumes
// on the same recording, nothing lost.
func TestLinkReturnsToOnlyRecorder(t *testing.T) {
	t.Parallel()
	m := newMembers()
	nw := newNetwork()
	a := startRecorder(t, "rec-a", 1)
	m.add(a, 100, 0)
	const failoverAfter = 200 * time.Millisecond
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: failoverAfter, Dial: nw.Dial})
	c := openCall(t, p, 0)
	c.send(25)
	callrectest.Eventually(t, waitTimeout, "audio acknowledged by rec-a", func() bool { return c.s.Acked() > 0 })
	cut := time.Now()
	nw.cut(a.addr, false)
	c.send(25)
	callrectest.Eventually(t, waitTimeout, "the link to try rec-a again after FailoverAfter", func() bool {
		return m.aliveAsked("rec-a", cut.Add(failoverAfter+50*time.Millisecond))
	})
	nw.heal(a.addr)
	healed := nw.dialCount(a.addr)
	c.send(25)
	// The link's backoff grew to 400-800 ms during the outage.
	waitUntil(t, 4*time.Second, p.Connected, func() string {
		return fmt.Sprintf("rec-a, the only recorder, is reachable again after an outage longer than FailoverAfter, "+
			"but the link never reconnected (%d dials to rec-a since): once FailoverAfter has passed, dial only "+
			"looks for another recorder and never retries its own", nw.dialCount(a.addr)-healed)
	})
	c.stop()
	if reply := c.finish(t); reply.State != callrec.StateComplete {
		t.Errorf("finished %q, want complete", reply.State)
	}
	segs := a.segments(t, c.info.StreamSID)
	if len(segs) != 1 {
		t.Fatalf("%d segments on rec-a, want 1 (the stream resumed on its recording)", len(segs))
	}
	checkWhole(t, a, segs[0], c)
	if got := callrectest.Metric(t, reg, "callrec_failovers_total", nil); got != 0 {
		t.Errorf("callrec_failovers_total = %v, want 0: the link came back to its recorder", got)
	}
}

// TestDrainedRecorderLeavingIsNoFailover: a recorder drains (its streams
// finish) and leaves. No stream was on it, so nothing failed over: the
// failover counter (what alerts watch) stays 0, and the adapter stays
// connected.
func TestDrainedRecorderLeavingIsNoFailover(t *testing.T) {
	t.Parallel()
	m := newMembers()
	a, b := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2)
	m.add(a, 100, 0)
	m.add(b, 50, 0)
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m, FailoverAfter: 5 * time.Second})
	c0, c1 := openCall(t, p, 0), openCall(t, p, 1) // both on rec-a: 100-1 > 50
	for _, c := range []*call{c0, c1} {
		c.send(10)
	}
	callrectest.Eventually(t, waitTimeout, "both streams on rec-a", func() bool {
		return len(a.segments(t, c0.info.StreamSID)) == 1 && len(a.segments(t, c1.info.StreamSID)) == 1
	})
	m.drain("rec-a")
	c2 := openCall(t, p, 2) // on rec-b
	c2.send(10)
	for _, c := range []*call{c0, c1} {
		c.stop()
		c.finish(t)
	}
	left := time.Now()
	m.remove("rec-a")
	a.kill()
	callrectest.Eventually(t, waitTimeout, "the placer to notice rec-a left and be connected", func() bool {
		return m.aliveAsked("rec-a", left) && p.Connected()
	})
	if got := callrectest.Metric(t, reg, "callrec_failovers_total", nil); got != 0 {
		t.Errorf("callrec_failovers_total = %v after a drained recorder with no streams left, want 0: "+
			"its idle link was 'failed over' (and a second link to rec-b opened)", got)
	}
	c2.stop()
	c2.finish(t)
}

// hungListener returns the address of a listener that accepts connections
// and never answers on them, like a stuck process whose kernel still
// completes TCP handshakes.
func hungListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
