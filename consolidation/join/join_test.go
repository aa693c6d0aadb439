package join

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"callrec"
	"callrec/consolidation/store"
)

const (
	taskSID   = "WTc146b6ad38277b931d94d82f20703136"
	resSID    = "WR16792ea346317c17b1487d339b1a86ed"
	workerSID = "WK6384e2b2184bcbf58eccf10ca7a6563c"
	alice     = "alice.agent@example.com"
	custCall  = "CAc0bb2f535401483f8461ddeef83c2d68"
	agentCall = "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
	confSID   = "CFab3049da9a0cd8d6e8b7c62586752472"
	streamSID = "MZ4ec1db7c787a4c9912e1b23305f43a5c"
	stream2   = "MZ00000000000000000000000000000002"
	customer  = "+15558675310"
	flexNum   = "+15551230000"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

func inum(t *testing.T, n uint64) callrec.INUM {
	t.Helper()
	x, err := callrec.NewINUM(7, n)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

type env struct {
	st *store.Store
	j  *Joiner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := New(st, filepath.Join(dir, "join.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &env{st: st, j: j}
}

func params(extra ...string) map[string]string {
	p := map[string]string{"task_sid": taskSID, "reservation_sid": resSID, "worker_sid": workerSID,
		"agent": alice, "stream_name": "rec-" + resSID, "leg": "customer"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

func rec(n callrec.INUM, stream string, p map[string]string, state callrec.RecordingState, start, stop time.Duration) callrec.Recording {
	r := callrec.Recording{INUM: n, Node: 7, State: state,
		Stream:    callrec.StreamInfo{StreamSID: stream, CallSID: custCall, CustomParameters: p, StartedAt: t0.Add(start)},
		StartedAt: t0.Add(start), UpdatedAt: t0.Add(start)}
	if state != callrec.StateRecording {
		r.StoppedAt, r.UpdatedAt = t0.Add(stop), t0.Add(stop)
		r.Audio.DurationMS = (stop - start).Milliseconds()
		r.EndReason = callrec.EndStop
		if state == callrec.StateInterrupted {
			r.EndReason = callrec.EndSocketClosed
		}
	}
	return r
}

func started(r callrec.Recording) callrec.RecordingEvent {
	r.State, r.StoppedAt, r.EndReason, r.UpdatedAt = callrec.StateRecording, time.Time{}, "", r.StartedAt
	r.Audio.DurationMS, r.Accounting = 0, callrec.Accounting{}
	return callrec.RecordingEvent{Type: callrec.RecordingStarted, At: r.StartedAt, Recording: r}
}

func stopped(r callrec.Recording) callrec.RecordingEvent {
	return callrec.RecordingEvent{Type: callrec.RecordingStopped, At: r.StoppedAt, Recording: r}
}

func contact(ended bool) callrec.Contact {
	c := callrec.Contact{TaskSID: taskSID, AccountSID: "ACe268443e43d93dab7ebef303bbe9642f",
		Status: callrec.ContactActive, CustomerCall: custCall, ConferenceSID: confSID,
		Participants: map[string]string{"customer": custCall, "worker": agentCall},
		Direction:    "inbound", From: customer, To: flexNum, QueueName: "Sales", TaskVersion: 2,
		CreatedAt: t0,
		Connections: []callrec.Connection{{ReservationSID: resSID, WorkerSID: workerSID, AgentExtension: alice, Team: "east",
			Status: callrec.ConnActive, Version: 1, Monitored: true, OfferedAt: t0.Add(2 * time.Second),
			AnsweredAt: t0.Add(5 * time.Second)}}}
	if ended {
		c.Status, c.TaskVersion, c.EndedAt = callrec.ContactEnded, 4, t0.Add(65*time.Second)
		c.Connections[0].Status, c.Connections[0].Version = callrec.ConnEnded, 3
		c.Connections[0].WrapUpAt, c.Connections[0].EndedAt = t0.Add(62*time.Second), t0.Add(65*time.Second)
	}
	return c
}

// aliceSegment is alice's session in contact(true): answered at 5 s,
// wrapped up at 62 s; the recordings in these tests start after 5 s, so
// the offset is 0.
func aliceSegment(recorded bool, n callrec.INUM) store.Segment {
	return store.Segment{Agent: alice, Team: "east", ReservationSID: resSID, WorkerSID: workerSID,
		Start: t0.Add(5 * time.Second), End: t0.Add(62 * time.Second), Recorded: recorded, INUM: n}
}

var ignoreUpdated = cmpopts.IgnoreFields(store.Interaction{}, "Updated")

func get(t *testing.T, e *env, id string) store.Interaction {
	t.Helper()
	in, err := e.st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestAnsweredCallEveryOrder(t *testing.T) {
	ctx := context.Background()
	n := inum(t, 1)
	r := rec(n, streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second)
	steps := []func(*Joiner) error{
		func(j *Joiner) error { return j.NotifyRecording(ctx, started(r)) },
		func(j *Joiner) error { return j.Contact(ctx, contact(false)) },
		func(j *Joiner) error { return j.Contact(ctx, contact(true)) },
		func(j *Joiner) error { return j.NotifyRecording(ctx, stopped(r)) },
	}
	want := store.Interaction{ID: taskSID, TaskSID: taskSID, CallSID: custCall, ConferenceSID: confSID,
		Direction: "inbound", From: customer, To: flexNum, Queue: "Sales", Agents: []string{alice},
		Teams: []string{"east"}, Start: t0, End: t0.Add(65 * time.Second), DurationMS: 65000, INUMs: []callrec.INUM{n},
		Status: store.StatusComplete, Segments: []store.Segment{aliceSegment(true, n)}}
	perms := permutations(len(steps))
	if len(perms) != 24 {
		t.Fatalf("%d permutations", len(perms))
	}
	for _, p := range perms {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			e := newEnv(t)
			// Every step, then every step again in reverse (duplicates).
			seq := append(append([]int{}, p...), p[3], p[2], p[1], p[0])
			for _, i := range seq {
				if err := steps[i](e.j); err != nil {
					t.Fatal(err)
				}
			}
			got := get(t, e, taskSID)
			if d := cmp.Diff(want, got, ignoreUpdated); d != "" {
				t.Fatalf("interaction (-want +got):\n%s", d)
			}
			if got.Updated.IsZero() {
				t.Error("Updated not set")
			}
			for name, q := range map[string]store.Query{
				"agent": {Agent: alice}, "number": {Number: "8675310"}, "inum": {INUM: n},
				"status": {Status: store.StatusComplete}, "task": {TaskSID: taskSID},
			} {
				res, err := e.st.Search(ctx, q)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(res.Items) != 1 || res.Items[0].ID != taskSID {
					t.Errorf("search by %s: %+v", name, res.Items)
				}
			}
		})
	}
}

func TestIntermediateStates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	n := inum(t, 1)
	r := rec(n, streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second)
	if err := e.j.Contact(ctx, contact(false)); err != nil {
		t.Fatal(err)
	}
	got := get(t, e, taskSID)
	if got.Status != store.StatusRecording || !cmp.Equal(got.Tags, []string{TagRecordingPending}) {
		t.Errorf("contact only: status %q tags %v", got.Status, got.Tags)
	}
	if err := e.j.NotifyRecording(ctx, started(r)); err != nil {
		t.Fatal(err)
	}
	got = get(t, e, taskSID)
	if got.Status != store.StatusRecording || len(got.Tags) != 0 || !got.End.IsZero() {
		t.Errorf("started: %+v", got)
	}
}

func TestRecordingWithoutContact(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	n := inum(t, 3)
	r := rec(n, streamSID, params("agent", "bob@example.com"), callrec.StateComplete, 6*time.Second, 30*time.Second)
	for _, ev := range []callrec.RecordingEvent{stopped(r), started(r), stopped(r)} {
		if err := e.j.NotifyRecording(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	want := store.Interaction{ID: taskSID, TaskSID: taskSID, CallSID: custCall, Agents: []string{"bob@example.com"},
		Start: t0.Add(6 * time.Second), End: t0.Add(30 * time.Second), DurationMS: 24000,
		INUMs: []callrec.INUM{n}, Status: store.StatusComplete, Tags: []string{TagContactMissing}}
	if d := cmp.Diff(want, get(t, e, taskSID), ignoreUpdated); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	res, err := e.st.Search(ctx, store.Query{Tags: []string{TagContactMissing}, Agent: "bob@example.com"})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("search: %v %+v", err, res)
	}

	// No agent parameter and no contact: no agent is guessed.
	e2 := newEnv(t)
	p := params()
	delete(p, "agent")
	delete(p, "task_sid")
	r2 := rec(inum(t, 4), streamSID, p, callrec.StateComplete, 0, time.Second)
	if err := e2.j.NotifyRecording(ctx, stopped(r2)); err != nil {
		t.Fatal(err)
	}
	got := get(t, e2, "call:"+custCall)
	if len(got.Agents) != 0 || got.TaskSID != "" || got.CallSID != custCall || !cmp.Equal(got.Tags, []string{TagContactMissing}) {
		t.Errorf("no agent param: %+v", got)
	}
}

func TestContactEndedWithoutRecording(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, c := range []callrec.Contact{contact(true), contact(false), contact(true)} {
		if err := e.j.Contact(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	want := store.Interaction{ID: taskSID, TaskSID: taskSID, CallSID: custCall, ConferenceSID: confSID,
		Direction: "inbound", From: customer, To: flexNum, Queue: "Sales", Agents: []string{alice},
		Teams: []string{"east"}, Start: t0, End: t0.Add(65 * time.Second), DurationMS: 65000,
		Status: store.StatusMissingAudio, Tags: []string{TagRecordingMissing}, Segments: []store.Segment{aliceSegment(false, "")}}
	if d := cmp.Diff(want, get(t, e, taskSID), ignoreUpdated); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	res, err := e.st.Search(ctx, store.Query{Status: store.StatusMissingAudio})
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("search: %v %+v", err, res)
	}

	// Not monitored: nothing was expected, nothing is missing.
	e2 := newEnv(t)
	c := contact(true)
	c.Connections[0].Monitored = false
	if err := e2.j.Contact(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e2, taskSID); got.Status != store.StatusComplete || !cmp.Equal(got.Tags, []string{TagNotRecorded}) {
		t.Errorf("unmonitored: status %q tags %v", got.Status, got.Tags)
	}
}

func TestStreamErrorReplacement(t *testing.T) {
	ctx := context.Background()
	n1, n2 := inum(t, 10), inum(t, 11)
	r1 := rec(n1, streamSID, params(), callrec.StateInterrupted, 6*time.Second, 20*time.Second)
	r2 := rec(n2, stream2, params("restart_of", streamSID, "restart", "1", "stream_name", "rec-"+resSID+"-restart1"),
		callrec.StateComplete, 22*time.Second, 64*time.Second)
	evs := []callrec.RecordingEvent{started(r1), stopped(r1), started(r2), stopped(r2)}
	want := store.Interaction{ID: taskSID, TaskSID: taskSID, CallSID: custCall, ConferenceSID: confSID,
		Direction: "inbound", From: customer, To: flexNum, Queue: "Sales", Agents: []string{alice},
		Teams: []string{"east"}, Start: t0, End: t0.Add(65 * time.Second), DurationMS: 65000, INUMs: []callrec.INUM{n1, n2},
		Status: store.StatusPartial, Tags: []string{TagRestarted}, Segments: []store.Segment{aliceSegment(true, n1)},
		// r1's audio ends at 20 s, r2's stream starts at 22 s.
		Gaps: []store.RestartGap{{FromINUM: n1, ToINUM: n2, FromStreamSID: streamSID, ToStreamSID: stream2,
			Start: t0.Add(20 * time.Second), End: t0.Add(22 * time.Second), DurationMS: 2000, Cause: store.GapStreamRestart}},
		GapMS: 2000}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 3, 0, 1}, {1, 3, 0, 2, 1, 3}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			e := newEnv(t)
			if err := e.j.Contact(ctx, contact(true)); err != nil {
				t.Fatal(err)
			}
			for _, i := range order {
				if err := e.j.NotifyRecording(ctx, evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(want, get(t, e, taskSID), ignoreUpdated); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
			for _, n := range []callrec.INUM{n1, n2} {
				res, err := e.st.Search(ctx, store.Query{INUM: n})
				if err != nil || len(res.Items) != 1 {
					t.Fatalf("search %s: %v %+v", n, err, res)
				}
			}
		})
	}

	// Without the replacement's stop yet: recording; with an unreplaced
	// interruption only: interrupted.
	e := newEnv(t)
	for _, ev := range []callrec.RecordingEvent{stopped(r1)} {
		if err := e.j.NotifyRecording(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := get(t, e, taskSID); got.Status != store.StatusInterrupted {
		t.Errorf("interrupted only: %q", got.Status)
	}
	if err := e.j.NotifyRecording(ctx, started(r2)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e, taskSID); got.Status != store.StatusRecording {
		t.Errorf("replacement running: %q", got.Status)
	}
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	path := filepath.Join(dir, "join.db")
	n := inum(t, 1)
	r := rec(n, streamSID, params(), callrec.StateComplete, 6*time.Second, 64*time.Second)
	j, err := New(st, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.NotifyRecording(ctx, stopped(r)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = New(st, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Contact(ctx, contact(true)); err != nil {
		t.Fatal(err)
	}
	in, err := st.Get(ctx, taskSID)
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != store.StatusComplete || len(in.Tags) != 0 || !cmp.Equal(in.INUMs, []callrec.INUM{n}) {
		t.Errorf("after restart: %+v", in)
	}
	if _, ok, err := j.Get(taskSID); !ok || err != nil {
		t.Errorf("Get: %v %v", ok, err)
	}
}

func TestInvalid(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.j.Contact(ctx, callrec.Contact{}); err == nil {
		t.Error("contact without task SID accepted")
	}
	if err := e.j.NotifyRecording(ctx, callrec.RecordingEvent{}); err == nil {
		t.Error("recording without INUM accepted")
	}
	r := rec(inum(t, 1), "", nil, callrec.StateComplete, 0, time.Second)
	r.Stream.CallSID = ""
	if err := e.j.NotifyRecording(ctx, stopped(r)); err == nil {
		t.Error("recording without task or call accepted")
	}
}

func TestSegmentsOfATransfer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	n := inum(t, 20)
	const bob, bobRes, bobWorker = "bob.agent@example.com", "WR00000000000000000000000000000b0b", "WK00000000000000000000000000000b0b"
	c := contact(true)
	// alice answers at 5 s and hands over to bob, who answers at 30 s and
	// stays to the end (65 s); one stream records the customer throughout.
	c.Connections[0].WrapUpAt = t0.Add(31 * time.Second)
	c.Connections = append(c.Connections, callrec.Connection{ReservationSID: bobRes, WorkerSID: bobWorker,
		AgentExtension: bob, Team: "west", Status: callrec.ConnEnded, Version: 3, Monitored: true,
		OfferedAt: t0.Add(25 * time.Second), AnsweredAt: t0.Add(30 * time.Second), EndedAt: t0.Add(65 * time.Second)})
	r := rec(n, streamSID, params("team", "east"), callrec.StateComplete, 6*time.Second, 64*time.Second)
	for _, step := range []func() error{
		func() error { return e.j.NotifyRecording(ctx, stopped(r)) },
		func() error { return e.j.Contact(ctx, c) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, e, taskSID)
	want := []store.Segment{
		{Agent: alice, Team: "east", ReservationSID: resSID, WorkerSID: workerSID,
			Start: t0.Add(5 * time.Second), End: t0.Add(31 * time.Second), Recorded: true, INUM: n},
		{Agent: bob, Team: "west", ReservationSID: bobRes, WorkerSID: bobWorker,
			Start: t0.Add(30 * time.Second), End: t0.Add(65 * time.Second), Recorded: true, INUM: n, OffsetMS: 24000},
	}
	if d := cmp.Diff(want, got.Segments); d != "" {
		t.Errorf("segments (-want +got):\n%s", d)
	}
	if !cmp.Equal(got.Agents, []string{alice, bob}) || !cmp.Equal(got.Teams, []string{"east", "west"}) {
		t.Errorf("agents %v teams %v", got.Agents, got.Teams)
	}

	// bob's session after the recording stopped early is not covered.
	e2 := newEnv(t)
	short := rec(inum(t, 21), streamSID, params(), callrec.StateInterrupted, 6*time.Second, 20*time.Second)
	if err := e2.j.NotifyRecording(ctx, stopped(short)); err != nil {
		t.Fatal(err)
	}
	if err := e2.j.Contact(ctx, c); err != nil {
		t.Fatal(err)
	}
	segs := get(t, e2, taskSID).Segments
	if len(segs) != 2 || !segs[0].Recorded || segs[1].Recorded || segs[1].INUM != "" {
		t.Errorf("bob's unrecorded session: %+v", segs)
	}

	// Without a contact the team comes from the stream's parameter.
	e3 := newEnv(t)
	if err := e3.j.NotifyRecording(ctx, stopped(r)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, e3, taskSID); !cmp.Equal(got.Teams, []string{"east"}) || len(got.Segments) != 0 {
		t.Errorf("no contact: teams %v segments %v", got.Teams, got.Segments)
	}
}
