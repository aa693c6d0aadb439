package join

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/store"
)

const (
	stream3 = "MZ00000000000000000000000000000003"
	stream4 = "MZ00000000000000000000000000000004"
)

// replica makes r replica k of its stream, written by recorder node 7+k.
func replica(t *testing.T, r callrec.Recording, k int, counter uint64) callrec.Recording {
	t.Helper()
	n, err := callrec.NewINUM(uint16(7+k), counter)
	if err != nil {
		t.Fatal(err)
	}
	r.INUM, r.Node, r.Stream.Replica = n, uint16(7+k), k
	return r
}

// playAll applies every event in order p, then every event again in
// reverse order (repeats), to a fresh joiner with the ended contact, and
// returns the interaction.
func playAll(t *testing.T, evs []callrec.RecordingEvent, p []int) store.Interaction {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	seq := append([]int{}, p...)
	for i := len(p) - 1; i >= 0; i-- {
		seq = append(seq, p[i])
	}
	contactAt := len(p) / 2 // the contact arrives somewhere in the middle
	for i, k := range seq {
		if i == contactAt {
			if err := e.j.Contact(ctx, contact(true)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.j.NotifyRecording(ctx, evs[k]); err != nil {
			t.Fatal(err)
		}
	}
	return get(t, e, taskSID)
}

// TestReplicasEveryOrder: a stream written by two recorders at once is
// one stream with two full copies, not two parts: the call is complete
// when either copy is, its twin's interruption does not make it
// interrupted or partial, no gap is reported between them, and the copy
// to play is the complete one (replica 1 on a tie). Every delivery order,
// with repeats, gives the same call record.
func TestReplicasEveryOrder(t *testing.T) {
	base := rec("", streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second)
	cut := rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 40*time.Second)
	cases := []struct {
		name      string
		r1, r2    callrec.Recording
		status    string
		st1, st2  string
		preferred int // replica
	}{
		{"replica 2 interrupted", base, cut, store.StatusComplete, store.StatusComplete, store.StatusInterrupted, 1},
		{"replica 1 interrupted", cut, base, store.StatusComplete, store.StatusInterrupted, store.StatusComplete, 2},
		{"both complete", base, base, store.StatusComplete, store.StatusComplete, store.StatusComplete, 1},
		{"both interrupted", cut, cut, store.StatusInterrupted, store.StatusInterrupted, store.StatusInterrupted, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r1, r2 := replica(t, tc.r1, 1, 30), replica(t, tc.r2, 2, 30)
			evs := []callrec.RecordingEvent{started(r1), stopped(r1), started(r2), stopped(r2)}
			pref := map[int]callrec.INUM{1: r1.INUM, 2: r2.INUM}[tc.preferred]
			end := t0.Add(65 * time.Second)
			want := store.Interaction{ID: taskSID, TaskSID: taskSID, CallSID: custCall, ConferenceSID: confSID,
				Direction: "inbound", From: customer, To: flexNum, Queue: "Sales", Agents: []string{alice},
				Teams: []string{"east"}, Start: t0, End: end, DurationMS: 65000,
				INUMs: []callrec.INUM{r1.INUM, r2.INUM}, Status: tc.status,
				Segments: []store.Segment{aliceSegment(true, pref)},
				Replicas: []store.ReplicaSet{{StreamSID: streamSID, Preferred: pref, Replicas: []store.Replica{
					{Replica: 1, INUMs: []callrec.INUM{r1.INUM}, Status: tc.st1},
					{Replica: 2, INUMs: []callrec.INUM{r2.INUM}, Status: tc.st2}}}}}
			if r2.INUM < r1.INUM {
				want.INUMs = []callrec.INUM{r2.INUM, r1.INUM}
			}
			for _, p := range permutations(len(evs)) {
				t.Run(fmt.Sprint(p), func(t *testing.T) {
					got := playAll(t, evs, p)
					if d := cmp.Diff(want, got, ignoreUpdated); d != "" {
						t.Fatalf("interaction (-want +got):\n%s", d)
					}
				})
			}
		})
	}
}

// TestReplicaIntermediateStates: while one replica is still being
// written the call is recording; the twin that is still recording is
// preferred over an interrupted one.
func TestReplicaIntermediateStates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ok := replica(t, rec("", streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second), 1, 40)
	cut := replica(t, rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 40*time.Second), 2, 40)
	ok.State = callrec.StateInterrupted // replica 1 dies at 64 s…
	ok.EndReason = callrec.EndSocketClosed
	for _, ev := range []callrec.RecordingEvent{started(cut), started(ok), stopped(cut)} {
		if err := e.j.NotifyRecording(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, e, taskSID)
	if got.Status != store.StatusRecording || len(got.Replicas) != 1 || got.Replicas[0].Preferred != ok.INUM {
		t.Errorf("replica 1 recording, replica 2 interrupted: status %q, replicas %+v; want recording, preferred %s",
			got.Status, got.Replicas, ok.INUM)
	}
	// …so both replicas are interrupted: so is the call, and nothing
	// claims a gap (no replacement stream).
	if err := e.j.NotifyRecording(ctx, stopped(ok)); err != nil {
		t.Fatal(err)
	}
	got = get(t, e, taskSID)
	if got.Status != store.StatusInterrupted || got.Replicas[0].Preferred != ok.INUM || len(got.Gaps) != 0 || got.GapMS != 0 {
		t.Errorf("both interrupted: status %q, replicas %+v, gaps %+v", got.Status, got.Replicas, got.Gaps)
	}
}

// TestReplicaWithFailover: replica 1's recorder is lost and the stream
// continues on another recorder (PreviousINUM), while replica 2 records
// the whole call: the call is complete, replica 1 is partial, replica 2
// plays, and the continuation gives no gap.
func TestReplicaWithFailover(t *testing.T) {
	a := replica(t, rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 30*time.Second), 1, 50)
	a.EndReason = callrec.EndLinkLost
	b := replica(t, rec("", streamSID, params(), callrec.StateComplete, 31*time.Second, 64*time.Second), 1, 51)
	b.PreviousINUM, b.Audio.OffsetMS = a.INUM, 25000
	b.Stream.StartedAt = a.Stream.StartedAt
	c := replica(t, rec("", streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second), 2, 50)
	evs := []callrec.RecordingEvent{stopped(a), stopped(b), stopped(c)}
	wantSet := []store.ReplicaSet{{StreamSID: streamSID, Preferred: c.INUM, Replicas: []store.Replica{
		{Replica: 1, INUMs: []callrec.INUM{a.INUM, b.INUM}, Status: store.StatusPartial},
		{Replica: 2, INUMs: []callrec.INUM{c.INUM}, Status: store.StatusComplete}}}}
	for _, p := range permutations(len(evs)) {
		got := playAll(t, evs, p)
		if got.Status != store.StatusComplete || len(got.Gaps) != 0 || len(got.Tags) != 0 {
			t.Errorf("%v: status %q, gaps %+v, tags %v; want complete, no gap, no tag", p, got.Status, got.Gaps, got.Tags)
		}
		if d := cmp.Diff(wantSet, got.Replicas); d != "" {
			t.Errorf("%v: replicas (-want +got):\n%s", p, d)
		}
		if len(got.Segments) != 1 || got.Segments[0].INUM != c.INUM {
			t.Errorf("%v: segments %+v, want on %s", p, got.Segments, c.INUM)
		}
	}

	// Without replica 2 the continuation still gives no gap: partial.
	got := playAll(t, evs[:2], []int{1, 0})
	if got.Status != store.StatusPartial || len(got.Gaps) != 0 || got.Replicas[0].Preferred != a.INUM {
		t.Errorf("replica 1 only: status %q, gaps %+v, replicas %+v", got.Status, got.Gaps, got.Replicas)
	}
}

// TestRestartGapExact: a stream fails (after a failover on the way), the
// tracker starts a replacement; the gap runs from the end of the failed
// stream's audio (stream start + offset + duration of its last segment)
// to the replacement stream's start, to the millisecond, whatever the
// recordings' own start and stop times say, in every order.
func TestRestartGapExact(t *testing.T) {
	s1 := t0.Add(1250 * time.Millisecond) // the failed stream's start
	s2 := t0.Add(16012 * time.Millisecond)
	a := rec(inum(t, 60), streamSID, params(), callrec.StateInterrupted, 1300*time.Millisecond, 6*time.Second)
	a.Stream.StartedAt, a.Audio.DurationMS, a.EndReason = s1, 5000, callrec.EndLinkLost
	b := rec(inum(t, 61), streamSID, params(), callrec.StateInterrupted, 7*time.Second, 15*time.Second)
	b.Stream.StartedAt, b.PreviousINUM, b.Audio.OffsetMS, b.Audio.DurationMS = s1, a.INUM, 5400, 8037
	c := rec(inum(t, 62), stream2, params("restart_of", streamSID), callrec.StateComplete, 16020*time.Millisecond, 64*time.Second)
	c.Stream.StartedAt = s2
	evs := []callrec.RecordingEvent{started(a), stopped(a), started(b), stopped(b), started(c), stopped(c)}
	// b's audio ends at s1 + 5.4 s + 8.037 s = t0 + 14.687 s.
	want := []store.RestartGap{{FromINUM: b.INUM, ToINUM: c.INUM, FromStreamSID: streamSID, ToStreamSID: stream2,
		Start: t0.Add(14687 * time.Millisecond), End: s2, DurationMS: 1325, Cause: store.GapStreamRestart}}
	orders := [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {4, 5, 0, 2, 1, 3}, {3, 5, 1, 0, 4, 2}, {1, 3, 5, 0, 2, 4}}
	for _, p := range orders {
		got := playAll(t, evs, p)
		if d := cmp.Diff(want, got.Gaps); d != "" {
			t.Errorf("%v: gaps (-want +got):\n%s", p, d)
		}
		if got.GapMS != 1325 || got.Status != store.StatusPartial || !cmp.Equal(got.Tags, []string{TagRestarted}) || len(got.Replicas) != 0 {
			t.Errorf("%v: gap_ms %d, status %q, tags %v, replicas %+v; want 1325, partial, [%s], none",
				p, got.GapMS, got.Status, got.Tags, got.Replicas, TagRestarted)
		}
	}

	// The failed stream's last segment not stopped yet: its audio may
	// still grow, so no gap is claimed.
	got := playAll(t, []callrec.RecordingEvent{stopped(a), started(b), stopped(c)}, []int{0, 1, 2})
	if len(got.Gaps) != 0 || got.Status != store.StatusRecording {
		t.Errorf("failed stream still open: status %q, gaps %+v", got.Status, got.Gaps)
	}

	// The replacement's adapter clock is behind: the gap is zero, never
	// negative.
	early := c
	early.Stream.StartedAt = t0.Add(14 * time.Second)
	got = playAll(t, []callrec.RecordingEvent{stopped(a), stopped(b), stopped(early)}, []int{2, 0, 1})
	wantZero := []store.RestartGap{{FromINUM: b.INUM, ToINUM: c.INUM, FromStreamSID: streamSID, ToStreamSID: stream2,
		Start: t0.Add(14687 * time.Millisecond), End: t0.Add(14687 * time.Millisecond), DurationMS: 0, Cause: store.GapStreamRestart}}
	if d := cmp.Diff(wantZero, got.Gaps); d != "" || got.GapMS != 0 {
		t.Errorf("replacement before the end: gap_ms %d, gaps (-want +got):\n%s", got.GapMS, d)
	}
}

// TestRestartGapWithReplicas: both the failed stream and its replacement
// were recorded twice: one gap, from the replica whose audio lasts longest
// to the replacement's earliest audio; the replicas give none.
func TestRestartGapWithReplicas(t *testing.T) {
	f1 := replica(t, rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 20*time.Second), 1, 70)
	f2 := replica(t, rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 20*time.Second), 2, 70)
	f2.Audio.DurationMS = 14120 // replica 2 synced 120 ms more than replica 1
	rp := params("restart_of", streamSID)
	g1 := replica(t, rec("", stream2, rp, callrec.StateComplete, 22*time.Second, 64*time.Second), 1, 71)
	g2 := replica(t, rec("", stream2, rp, callrec.StateComplete, 22*time.Second, 64*time.Second), 2, 71)
	evs := []callrec.RecordingEvent{stopped(f1), stopped(f2), stopped(g1), stopped(g2)}
	want := []store.RestartGap{{FromINUM: f2.INUM, ToINUM: g1.INUM, FromStreamSID: streamSID, ToStreamSID: stream2,
		Start: t0.Add(20120 * time.Millisecond), End: t0.Add(22 * time.Second), DurationMS: 1880, Cause: store.GapStreamRestart}}
	for _, p := range permutations(len(evs)) {
		got := playAll(t, evs, p)
		if d := cmp.Diff(want, got.Gaps); d != "" {
			t.Errorf("%v: gaps (-want +got):\n%s", p, d)
		}
		if got.Status != store.StatusPartial || len(got.Replicas) != 2 || got.Replicas[0].Preferred != f1.INUM || got.Replicas[1].Preferred != g1.INUM {
			t.Errorf("%v: status %q, replicas %+v", p, got.Status, got.Replicas)
		}
	}
}

// merged makes r a merged recording of the given copies (dual-stream
// capture): its stream is the first copy's.
func merged(r callrec.Recording, sids ...string) callrec.Recording {
	r.Stream.Pair = &callrec.StreamPair{Group: "rec-" + resSID, Copy: 1, Copies: 2}
	r.Accounting.Copies = nil
	for i, sid := range sids {
		r.Accounting.Copies = append(r.Accounting.Copies, callrec.CopyAccounting{Copy: i + 1, StreamSID: sid,
			Adapter: fmt.Sprintf("adapter-%d", i+1), Alignment: callrec.AlignContent, JoinedAt: r.StartedAt})
	}
	r.Accounting.Copies[0].Alignment = callrec.AlignOrigin
	return r
}

// TestMergedRecordingRestarts: a copy of a dual-stream pair that fails
// and is restarted joins the merged recording (no gap, complete); when the
// merged recording had ended, its restart is a new recording, and the gap
// is measured from the merged recording, naming the failed copy.
func TestMergedRecordingRestarts(t *testing.T) {
	// The restart of copy 2 joined the merged recording as copy 3.
	m := merged(rec(inum(t, 80), streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second), streamSID, stream2, stream3)
	got := playAll(t, []callrec.RecordingEvent{started(m), stopped(m)}, []int{1, 0})
	if got.Status != store.StatusComplete || len(got.Gaps) != 0 || len(got.Tags) != 0 {
		t.Errorf("restart joined the merged recording: status %q, gaps %+v, tags %v", got.Status, got.Gaps, got.Tags)
	}

	// The merged recording ended (interrupted); copy 2's restart is a new
	// recording, which its own copy 2 (copy 1's restart) joined.
	m = merged(rec(inum(t, 81), streamSID, params(), callrec.StateInterrupted, 6*time.Second, 30*time.Second), streamSID, stream2)
	n := merged(rec(inum(t, 82), stream3, params("restart_of", stream2), callrec.StateComplete, 33*time.Second, 64*time.Second), stream3, stream4)
	evs := []callrec.RecordingEvent{started(m), stopped(m), started(n), stopped(n)}
	want := []store.RestartGap{{FromINUM: m.INUM, ToINUM: n.INUM, FromStreamSID: stream2, ToStreamSID: stream3,
		Start: t0.Add(30 * time.Second), End: t0.Add(33 * time.Second), DurationMS: 3000, Cause: store.GapStreamRestart}}
	for _, p := range permutations(len(evs)) {
		got := playAll(t, evs, p)
		if d := cmp.Diff(want, got.Gaps); d != "" {
			t.Errorf("%v: gaps (-want +got):\n%s", p, d)
		}
		if got.Status != store.StatusPartial || !cmp.Equal(got.Tags, []string{TagRestarted}) {
			t.Errorf("%v: status %q, tags %v; want partial, restarted", p, got.Status, got.Tags)
		}
	}
}

// TestMergedReplicas: a dual-stream pair written by two recorders, whose
// merged recordings start from different copies (each recorder's first
// copy to arrive), is one stream with two replicas.
func TestMergedReplicas(t *testing.T) {
	r1 := replica(t, merged(rec("", streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second), streamSID, stream2), 1, 90)
	r2 := replica(t, merged(rec("", stream2, params(), callrec.StateInterrupted, 6*time.Second, 50*time.Second), stream2, streamSID), 2, 90)
	got := playAll(t, []callrec.RecordingEvent{stopped(r1), stopped(r2)}, []int{1, 0})
	if got.Status != store.StatusComplete || len(got.Replicas) != 1 || got.Replicas[0].Preferred != r1.INUM ||
		len(got.Replicas[0].Replicas) != 2 || len(got.Gaps) != 0 {
		t.Errorf("merged replicas: status %q, replicas %+v, gaps %+v", got.Status, got.Replicas, got.Gaps)
	}
}

// TestRestartJoinedOneReplica: copy 2 of a dual-stream pair fails and is
// restarted; on recorder 1 the restart joins the merged recording, which
// completes; on recorder 2 the merged recording had ended, so the restart
// is a new recording there. Replica 1 lost nothing: the call is complete,
// with no gap, replica 1 plays, replica 2 is partial.
func TestRestartJoinedOneReplica(t *testing.T) {
	ma := replica(t, merged(rec("", streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second), streamSID, stream2, stream3), 1, 95)
	mb := replica(t, merged(rec("", streamSID, params(), callrec.StateInterrupted, 6*time.Second, 30*time.Second), streamSID, stream2), 2, 95)
	nb := replica(t, merged(rec("", stream3, params("restart_of", stream2), callrec.StateComplete, 33*time.Second, 64*time.Second), stream3), 2, 96)
	evs := []callrec.RecordingEvent{stopped(ma), stopped(mb), stopped(nb)}
	wantSets := []store.ReplicaSet{{StreamSID: streamSID, Preferred: ma.INUM, Replicas: []store.Replica{
		{Replica: 1, INUMs: []callrec.INUM{ma.INUM}, Status: store.StatusComplete},
		{Replica: 2, INUMs: []callrec.INUM{mb.INUM, nb.INUM}, Status: store.StatusPartial}}}}
	for _, p := range permutations(len(evs)) {
		got := playAll(t, evs, p)
		if d := cmp.Diff(wantSets, got.Replicas); d != "" {
			t.Errorf("%v: replicas (-want +got):\n%s", p, d)
		}
		if got.Status != store.StatusComplete || len(got.Gaps) != 0 || !cmp.Equal(got.Tags, []string{TagRestarted}) {
			t.Errorf("%v: status %q, gaps %+v, tags %v; want complete, no gap, [%s]", p, got.Status, got.Gaps, got.Tags, TagRestarted)
		}
	}
}
