package mediaadapter_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/link"
	"callrec/mediaadapter"
	"callrec/placement"
)

// replicaOn finds the recorder holding replica n of stream sid (in its
// first segment) among recs.
func replicaOn(t testing.TB, recs []*recNode, sid string, n int) *recNode {
	t.Helper()
	for _, r := range recs {
		if segs := r.segments(t, sid); len(segs) > 0 && segs[0].Stream.Replica == n {
			return r
		}
	}
	return nil
}

// awaitReplicas waits until each replica of sid has a recording with at
// least chunks chunks, on two different recorders, and returns them.
func awaitReplicas(t testing.TB, recs []*recNode, sid string, chunks uint32) (r1, r2 *recNode) {
	t.Helper()
	callrectest.Eventually(t, waitTimeout, fmt.Sprintf("both replicas of %s recording, %d chunks in", sid, chunks), func() bool {
		r1, r2 = replicaOn(t, recs, sid, 1), replicaOn(t, recs, sid, 2)
		return r1 != nil && r2 != nil && lastChunk(t, r1, sid) >= chunks && lastChunk(t, r2, sid) >= chunks
	})
	if r1 == r2 {
		t.Fatalf("both replicas of %s on %s, want two recorders", sid, r1.name)
	}
	return r1, r2
}

// finishedOn waits until r's newest recording of sid is finished and
// returns r's recordings of it.
func finishedOn(t testing.TB, r *recNode, sid string) []*callrec.Recording {
	t.Helper()
	var segs []*callrec.Recording
	callrectest.Eventually(t, waitTimeout, sid+" finished on "+r.name, func() bool {
		segs = r.segments(t, sid)
		return len(segs) > 0 && segs[len(segs)-1].State != callrec.StateRecording
	})
	return segs
}

// TestDualRecording: with dual recording over a pool of two recorders,
// one call is written whole by both: the same chunks, the same accounting,
// the very audio sent, as two recordings with different INUMs, replicas 1
// and 2.
func TestDualRecording(t *testing.T) {
	a, b := startRecorder(t, "rec-a", 1, nil), startRecorder(t, "rec-b", 2, nil)
	reg := prometheus.NewRegistry()
	p := newPlacer(t, placement.Config{Recorders: newMembers(a, b), Registerer: reg})
	ad := startAdapter(t, mediaadapter.Config{DualRecording: true}, p, reg)
	f := ad.twilioOn(t, 1, "/media", ad.public, map[string]string{"agent": "WK1"})
	f.media(150)
	f.stop()
	checkBothWhole(t, []*recNode{a, b}, f)
	for kind, want := range map[string]float64{"single": 1, "replica": 1, "pair": 0} {
		if got := callrectest.Metric(t, reg, "callrec_placement_decisions_total", map[string]string{"kind": kind}); got != want {
			t.Errorf("callrec_placement_decisions_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
	if got := callrectest.Metric(t, reg, "callrec_media_dual_recording_single_total", nil); got != 0 {
		t.Errorf("callrec_media_dual_recording_single_total = %v with two recorders, want 0", got)
	}
}

// checkBothWhole checks that the call f sent is recorded whole, once as
// replica 1 and once as replica 2, on two of recs.
func checkBothWhole(t *testing.T, recs []*recNode, f *fakeTwilio) {
	t.Helper()
	r1, r2 := awaitReplicas(t, recs, f.streamSID, f.chunks)
	s1, s2 := finishedOn(t, r1, f.streamSID), finishedOn(t, r2, f.streamSID)
	if len(s1) != 1 || len(s2) != 1 {
		t.Fatalf("%d recordings on %s and %d on %s, want one each", len(s1), r1.name, len(s2), r2.name)
	}
	checkWhole(t, r1, s1[0], f)
	checkWhole(t, r2, s2[0], f)
	if s1[0].INUM == s2[0].INUM {
		t.Errorf("both replicas have INUM %s, want two", s1[0].INUM)
	}
	if s1[0].Stream.Replica != 1 || s2[0].Stream.Replica != 2 {
		t.Errorf("Stream.Replica %d on %s and %d on %s, want 1 and 2", s1[0].Stream.Replica, r1.name, s2[0].Stream.Replica, r2.name)
	}
	for i := range s1[0].Accounting.Tracks {
		x, y := s1[0].Accounting.Tracks[i], s2[0].Accounting.Tracks[i]
		if x.Expected != y.Expected || x.Received != y.Received || x.Missing != y.Missing || x.Samples != y.Samples || x.Duplicates != y.Duplicates {
			t.Errorf("track %s accounted differently: replica 1 %+v, replica 2 %+v", x.Track, x, y)
		}
	}
	if m1, m2 := s1[0].Accounting.Messages, s2[0].Accounting.Messages; m1 != m2 {
		t.Errorf("messages accounted differently: replica 1 %+v, replica 2 %+v", m1, m2)
	}
}

// TestDualRecordingWithoutPool: mediaadapter.Replicas over two link
// clients (an adapter given two recorder addresses) writes both replicas.
func TestDualRecordingWithoutPool(t *testing.T) {
	a, b := startRecorder(t, "rec-a", 1, nil), startRecorder(t, "rec-b", 2, nil)
	ad := startAdapter(t, mediaadapter.Config{DualRecording: true}, mediaadapter.Replicas{linkClient(t, a), linkClient(t, b)}, nil)
	f := ad.twilioOn(t, 2, "/media", ad.public, nil)
	f.media(60)
	f.stop()
	checkBothWhole(t, []*recNode{a, b}, f)
	if r := replicaOn(t, []*recNode{a, b}, f.streamSID, 1); r != a {
		t.Errorf("replica 1 on %v, want rec-a (the first address)", r)
	}
}

// TestDualRecordingNeedsReplicaOpener: dual recording over one plain link
// client is a configuration error, not a silent single recording.
func TestDualRecordingNeedsReplicaOpener(t *testing.T) {
	_, err := mediaadapter.New(mediaadapter.Config{DualRecording: true, SkipSignature: true}, link.NewClient(link.ClientConfig{AdapterID: "x"}), nil, nil)
	if c := callrec.ErrorCode(err); c != callrec.EINVALID {
		t.Errorf("New with dual recording over one link client: %v (code %q), want %s", err, c, callrec.EINVALID)
	}
}

// TestDualRecordingOneRecorder: with a single recorder in the pool, the
// stream is written once (replica 1), with a warning and a metric, and not
// parked waiting for a second recorder.
func TestDualRecordingOneRecorder(t *testing.T) {
	a := startRecorder(t, "rec-a", 1, nil)
	reg := prometheus.NewRegistry()
	p := newPlacer(t, placement.Config{Recorders: newMembers(a), Registerer: reg})
	ad := startAdapter(t, mediaadapter.Config{DualRecording: true}, p, reg)
	f := ad.twilioOn(t, 3, "/media", ad.public, nil)
	f.media(40)
	f.stop()
	segs := finishedOn(t, a, f.streamSID)
	if len(segs) != 1 {
		t.Fatalf("%d recordings on the only recorder, want 1", len(segs))
	}
	checkWhole(t, a, segs[0], f)
	if segs[0].Stream.Replica != 1 {
		t.Errorf("Stream.Replica = %d, want 1", segs[0].Stream.Replica)
	}
	if got := callrectest.Metric(t, reg, "callrec_media_dual_recording_single_total", nil); got != 1 {
		t.Errorf("callrec_media_dual_recording_single_total = %v, want 1", got)
	}
	within(t, waitTimeout, "the placer's Wait (no replica parked)", func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := p.Wait(ctx); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	if p.Active() != 0 {
		t.Errorf("placer Active() = %d after the only stream ended, want 0", p.Active())
	}
}

// feeder sends one chunk of both tracks every tick until stopped, as
// Twilio paces media, and is the socket's only writer meanwhile.
type feeder struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func feed(f *fakeTwilio, tick time.Duration) *feeder {
	fd := &feeder{stop: make(chan struct{})}
	fd.wg.Go(func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-fd.stop:
				return
			case <-tk.C:
				f.media(1)
			}
		}
	})
	return fd
}

func (fd *feeder) halt() {
	select {
	case <-fd.stop:
	default:
		close(fd.stop)
	}
	fd.wg.Wait()
}

// TestDualRecordingReplicaFailsOver: three recorders; a call's replicas
// are on two of them when replica 2's recorder dies (its link server
// stops, as on SIGKILL) while membership still calls it alive. Replica 1
// is untouched: it keeps recording in real time throughout and ends whole
// on one segment. Replica 2 fails over as any stream does, after
// FailoverAfter, to the third recorder (not replica 1's), as a
// continuation that together with the first segment holds every chunk.
// Twilio's socket never waits.
func TestDualRecordingReplicaFailsOver(t *testing.T) {
	recs := []*recNode{startRecorder(t, "rec-a", 1, nil), startRecorder(t, "rec-b", 2, nil), startRecorder(t, "rec-c", 3, nil)}
	reg := prometheus.NewRegistry()
	const failoverAfter = 1500 * time.Millisecond
	p := newPlacer(t, placement.Config{Recorders: newMembers(recs...), FailoverAfter: failoverAfter, Registerer: reg})
	ad := startAdapter(t, mediaadapter.Config{DualRecording: true}, p, reg)
	f := ad.twilioOn(t, 4, "/media", ad.public, nil)
	fd := feed(f, 4*time.Millisecond)
	t.Cleanup(fd.halt)
	r1, r2 := awaitReplicas(t, recs, f.streamSID, 30)
	var r3 *recNode
	for _, r := range recs {
		if r != r1 && r != r2 {
			r3 = r
		}
	}
	first2 := r2.segments(t, f.streamSID)[0].INUM

	killedAt := lastChunk(t, r1, f.streamSID)
	r2.kill()
	// Replica 1 goes on in real time while replica 2 has nowhere to go.
	callrectest.Eventually(t, waitTimeout, "replica 1 recording 50 more chunks after replica 2's recorder died", func() bool {
		return lastChunk(t, r1, f.streamSID) >= killedAt+50
	})
	if n := len(r3.segments(t, f.streamSID)); n != 0 {
		t.Fatalf("replica 2 already on %s before FailoverAfter: the window this test needs did not happen", r3.name)
	}
	callrectest.Eventually(t, waitTimeout, "replica 2 continued on "+r3.name, func() bool { return lastChunk(t, r3, f.streamSID) > 0 })
	fd.halt()
	f.media(10)
	f.stop()

	s1 := finishedOn(t, r1, f.streamSID)
	if len(s1) != 1 {
		t.Fatalf("replica 1: %d recordings on %s, want 1 (untouched)", len(s1), r1.name)
	}
	checkWhole(t, r1, s1[0], f)
	s2, s3 := r2.segments(t, f.streamSID), finishedOn(t, r3, f.streamSID)
	if len(s2) != 1 || len(s3) != 1 {
		t.Fatalf("replica 2: %d segments on %s (dead) and %d on %s, want one each", len(s2), r2.name, len(s3), r3.name)
	}
	checkSplit(t, r2, s2[0], r3, s3[0], f)
	if s2[0].INUM != first2 || s2[0].Stream.Replica != 2 || s3[0].Stream.Replica != 2 || s1[0].Stream.Replica != 1 {
		t.Errorf("replicas: %d on %s, %d and %d on %s and %s; want 1, then 2 and 2", s1[0].Stream.Replica, r1.name,
			s2[0].Stream.Replica, s3[0].Stream.Replica, r2.name, r3.name)
	}
	if got := callrectest.Metric(t, reg, "callrec_failovers_total", nil); got != 1 {
		t.Errorf("callrec_failovers_total = %v, want 1 (replica 2's link)", got)
	}
	if got := callrectest.Metric(t, reg, "callrec_media_replica_failures_total", nil); got != 0 {
		t.Errorf("callrec_media_replica_failures_total = %v: a failover is not a replica failure", got)
	}
	if f.maxWrite > time.Second {
		t.Errorf("a write to the adapter's socket took %v: Twilio's socket must never wait", f.maxWrite)
	}
}

// checkSplit checks replica 2 recorded as two segments: the first on ra,
// interrupted, from chunk 1 without gap; the second on rb, complete,
// continuing it, with no chunk lost between them; the audio is what was
// sent.
func checkSplit(t *testing.T, ra *recNode, first *callrec.Recording, rb *recNode, second *callrec.Recording, f *fakeTwilio) {
	t.Helper()
	if first.State != callrec.StateInterrupted || first.Node != ra.id {
		t.Errorf("first segment %s: state %q (%s), node %d; want interrupted on node %d", first.INUM, first.State, first.EndReason, first.Node, ra.id)
	}
	if second.State != callrec.StateComplete || second.PreviousINUM != first.INUM || second.Node != rb.id {
		t.Errorf("second segment %s: state %q (%s), previous %q, node %d; want complete, continuing %s, on node %d",
			second.INUM, second.State, second.EndReason, second.PreviousINUM, second.Node, first.INUM, rb.id)
	}
	if len(first.Accounting.Tracks) != 2 || len(second.Accounting.Tracks) != 2 {
		t.Fatalf("tracks %d and %d, want 2 in each segment", len(first.Accounting.Tracks), len(second.Accounting.Tracks))
	}
	for i := range 2 {
		fa, sa := first.Accounting.Tracks[i], second.Accounting.Tracks[i]
		if fa.FirstChunk != 1 || fa.Missing != 0 || fa.LastChunk == 0 {
			t.Errorf("%s on %s: chunks %d..%d with %d missing; want from 1, none missing", fa.Track, ra.name, fa.FirstChunk, fa.LastChunk, fa.Missing)
		}
		if sa.FirstChunk > fa.LastChunk+1 || sa.Missing != 0 || sa.LastChunk != f.chunks {
			t.Errorf("%s: first segment ends at chunk %d, second holds %d..%d with %d missing (sent 1..%d): chunks lost",
				fa.Track, fa.LastChunk, sa.FirstChunk, sa.LastChunk, sa.Missing, f.chunks)
		}
		checkAudio(t, ra, first, f.n, callrec.Track(i), 1, fa.LastChunk)
		checkAudio(t, rb, second, f.n, callrec.Track(i), sa.FirstChunk, sa.LastChunk)
	}
}

// cutNetwork is a placer's Dial whose connections to an address can be cut
// off: existing ones closed, new ones refused.
type cutNetwork struct {
	mu    sync.Mutex
	cut   map[string]bool
	conns map[string][]net.Conn
}

func (n *cutNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	cut := n.cut[addr]
	n.mu.Unlock()
	if cut {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.conns[addr] = append(n.conns[addr], c)
	n.mu.Unlock()
	return c, nil
}

func (n *cutNetwork) cutOff(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[addr] = true
	for _, c := range n.conns[addr] {
		c.Close()
	}
}

// TestDualRecordingOverflowOneReplica: replica 2's recorder becomes
// unreachable (and stays listed, with no failover within the test) until
// its retention budget overflows. Replica 1 records every frame, the
// socket never waits, and the drops are counted; Twilio's stop still ends
// the socket normally.
func TestDualRecordingOverflowOneReplica(t *testing.T) {
	a, b := startRecorder(t, "rec-a", 1, nil), startRecorder(t, "rec-b", 2, nil)
	reg := prometheus.NewRegistry()
	nw := &cutNetwork{cut: map[string]bool{}, conns: map[string][]net.Conn{}}
	p := newPlacer(t, placement.Config{Recorders: newMembers(a, b), FailoverAfter: time.Hour, RetainBytes: 32 << 10, Dial: nw.Dial, Registerer: reg})
	ad := startAdapter(t, mediaadapter.Config{DualRecording: true}, p, reg)
	f := ad.twilioOn(t, 5, "/media", ad.public, nil)
	fd := feed(f, 2*time.Millisecond)
	t.Cleanup(fd.halt)
	r1, r2 := awaitReplicas(t, []*recNode{a, b}, f.streamSID, 10)
	nw.cutOff(r2.addr)
	// 32 KiB hold about 80 chunks of both tracks: send well past that.
	callrectest.Eventually(t, waitTimeout, "replica 1 recording 300 chunks", func() bool { return lastChunk(t, r1, f.streamSID) >= 300 })
	fd.halt()
	f.stop()
	s1 := finishedOn(t, r1, f.streamSID)
	if len(s1) != 1 {
		t.Fatalf("replica 1: %d recordings, want 1", len(s1))
	}
	checkWhole(t, r1, s1[0], f)
	if got := callrectest.Metric(t, reg, "callrec_media_frames_dropped_total", nil); got == 0 {
		t.Error("callrec_media_frames_dropped_total = 0: replica 2's budget never overflowed, the test proved nothing")
	}
	if f.maxWrite > time.Second {
		t.Errorf("a write to the adapter's socket took %v: Twilio's socket must never wait", f.maxWrite)
	}
	if got := callrectest.Metric(t, reg, "callrec_media_streams_ended_total", map[string]string{"reason": callrec.EndStop}); got != 1 {
		t.Errorf("callrec_media_streams_ended_total{reason=stop} = %v, want 1", got)
	}
}

// within runs f and fails the test if it does not return within d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
