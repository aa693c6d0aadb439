package placement_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/placement"
)

// TestOpenBeforeAnyRecorder: a stream opened while membership lists no
// recorder keeps its frames until one appears, then records there
// completely, as one recording (no continuation: it was never anywhere).
func TestOpenBeforeAnyRecorder(t *testing.T) {
	m := newMembers()
	p, reg, _ := newPlacer(t, placement.Config{Recorders: m})
	c := openCall(t, p, 0)
	c.send(20)
	if got := callrectest.Metric(t, reg, "callrec_placement_no_recorder_total", nil); got != 1 {
		t.Errorf("callrec_placement_no_recorder_total = %v, want 1", got)
	}
	if p.Active() != 1 {
		t.Errorf("Active() = %d with one stream waiting for a recorder, want 1", p.Active())
	}
	// The link looked for a recorder (Open once, then at least one dial).
	callrectest.Eventually(t, waitTimeout, "the link to look for a recorder", func() bool { return m.listCalls() >= 2 })
	if p.Connected() {
		t.Error("Connected() with no recorder at all, want false")
	}

	a := startRecorder(t, "rec-a", 1)
	m.add(a, 100, 0)
	c.send(20)
	callrectest.Eventually(t, waitTimeout, "the link connected to rec-a", p.Connected)
	c.send(20)
	c.stop()
	c.finish(t)
	segs := a.segments(t, c.info.StreamSID)
	if len(segs) != 1 {
		t.Fatalf("%d recordings of the stream on rec-a, want 1", len(segs))
	}
	checkWhole(t, a, segs[0], c)
	if got := callrectest.Metric(t, reg, "callrec_failovers_total", nil); got != 0 {
		t.Errorf("callrec_failovers_total = %v: binding a waiting link is no failover", got)
	}
}

// TestOpenWhileOnlyRecorderDrains: the only recorder is draining (alive,
// finishing its streams, listed by Recorders no more) when a new stream
// starts. The stream must not go to the draining recorder: it waits in
// retention (as Open's doc says) and records on the recorder that appears.
func TestOpenWhileOnlyRecorderDrains(t *testing.T) {
	m := newMembers()
	a := startRecorder(t, "rec-a", 1)
	m.add(a, 100, 0)
	p, _, _ := newPlacer(t, placement.Config{Recorders: m})
	old := openCall(t, p, 0)
	old.send(10)
	callrectest.Eventually(t, waitTimeout, "the first stream on rec-a", func() bool { return len(a.segments(t, old.info.StreamSID)) == 1 })

	m.drain("rec-a")
	c := openCall(t, p, 1)
	c.send(20)
	b := startRecorder(t, "rec-b", 2)
	m.add(b, 100, 0)
	c.send(20)
	callrectest.Eventually(t, waitTimeout, "the new stream recorded somewhere", func() bool {
		return len(a.segments(t, c.info.StreamSID))+len(b.segments(t, c.info.StreamSID)) > 0
	})
	if n := len(a.segments(t, c.info.StreamSID)); n != 0 {
		t.Errorf("a stream opened while rec-a was draining was recorded on rec-a (%d recordings): with no listed "+
			"recorder Open takes p.all[0], a link connected to the draining recorder, so the frames do not wait", n)
	}
	c.stop()
	c.finish(t)
	old.stop()
	old.finish(t)
	if segs := b.segments(t, c.info.StreamSID); len(segs) != 1 {
		t.Errorf("%d recordings of the new stream on rec-b, want 1", len(segs))
	} else {
		checkWhole(t, b, segs[0], c)
	}
}

// TestActiveConnectedWait: Active counts open streams over all links,
// Connected says whether every link is up, Wait returns once every stream
// is finished (and not before), Done once the links stop.
func TestActiveConnectedWait(t *testing.T) {
	m := newMembers()
	nw := newNetwork()
	a, b := startRecorder(t, "rec-a", 1), startRecorder(t, "rec-b", 2)
	m.add(a, 100, 0)
	m.add(b, 100, 0)
	p, _, cancel := newPlacer(t, placement.Config{Recorders: m, Dial: nw.Dial, FailoverAfter: 10 * time.Second})
	if p.Active() != 0 {
		t.Errorf("Active() = %d before any Open, want 0", p.Active())
	}
	if err := p.Wait(t.Context()); err != nil {
		t.Errorf("Wait with no stream: %v", err)
	}

	calls := make([]*call, 4)
	for i := range calls {
		calls[i] = openCall(t, p, i)
		calls[i].send(5)
	}
	if p.Active() != 4 {
		t.Errorf("Active() = %d right after 4 Opens, want 4", p.Active())
	}
	callrectest.Eventually(t, waitTimeout, "both links connected", p.Connected)

	ctx, stop := context.WithTimeout(t.Context(), 100*time.Millisecond)
	err := p.Wait(ctx)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with 4 streams open = %v, want the context's deadline", err)
	}

	// A link down (its recorder unreachable, still alive): not connected,
	// its streams still count, and they come back when it heals.
	nw.cut(a.addr, false)
	callrectest.Eventually(t, waitTimeout, "Connected() false while rec-a is unreachable", func() bool { return !p.Connected() })
	if p.Active() != 4 {
		t.Errorf("Active() = %d while a link is down, want 4", p.Active())
	}
	nw.heal(a.addr)
	callrectest.Eventually(t, waitTimeout, "Connected() again once rec-a is reachable", p.Connected)

	for _, c := range calls[:2] {
		c.stop()
		c.finish(t)
	}
	if p.Active() != 2 {
		t.Errorf("Active() = %d after 2 of 4 streams finished, want 2", p.Active())
	}
	for _, c := range calls[2:] {
		c.stop()
	}
	ctx, stop = context.WithTimeout(t.Context(), waitTimeout)
	defer stop()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("Wait after every stream was stopped: %v", err)
	}
	for _, c := range calls[2:] {
		select {
		case <-c.s.Done():
		default:
			t.Errorf("%s not finished when Wait returned", c.info.StreamSID)
		}
	}
	if p.Active() != 0 {
		t.Errorf("Active() = %d after Wait, want 0", p.Active())
	}
	for i, c := range calls {
		r := a
		if i%2 == 1 {
			r = b
		}
		if segs := r.segments(t, c.info.StreamSID); len(segs) != 1 {
			t.Errorf("%s: %d recordings on %s, want 1", c.info.StreamSID, len(segs), r.name)
		} else {
			checkWhole(t, r, segs[0], c)
		}
	}

	// Streams open when the context ends finish with ErrClientClosed; Done
	// returns; an Open afterwards yields a finished stream.
	last := openCall(t, p, 9)
	last.send(3)
	cancel()
	within(t, waitTimeout, "Done after the context ended", p.Done)
	select {
	case <-last.s.Done():
	default:
		t.Fatal("a stream open when the placer stopped is not finished after Done")
	}
	if _, err := last.s.Result(); !errors.Is(err, link.ErrClientClosed) {
		t.Errorf("stream open at shutdown ended with %v, want ErrClientClosed", err)
	}
	if n := p.Active(); n != 0 {
		t.Errorf("Active() = %d after Done, want 0", n)
	}
	after := p.Open(streamInfo(10))
	select {
	case <-after.Done():
	case <-time.After(waitTimeout):
		t.Fatal("Open after the placer stopped returned a stream that never finishes")
	}
	if after.Frame(&last.f) {
		t.Error("Frame accepted on a stream opened after the placer stopped")
	}
}

// TestMetricsRegistered: New registers its counters with the registry, at
// zero until something happens.
func TestMetricsRegistered(t *testing.T) {
	m := newMembers()
	_, reg, _ := newPlacer(t, placement.Config{Recorders: m})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"callrec_failovers_total", "callrec_placement_no_recorder_total"} {
		if !got[name] {
			t.Errorf("%s not registered (have %v)", name, got)
		}
		if v := callrectest.Metric(t, reg, name, nil); v != 0 {
			t.Errorf("%s = %v at start, want 0", name, v)
		}
	}
}
