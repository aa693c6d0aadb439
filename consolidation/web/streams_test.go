package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

// streamCall joins a call (see joinCall) and returns its detail as
// compliance sees it, with the client that asked.
func streamCall(t *testing.T, e *testEnv, task string, start time.Time, recs ...callrec.Recording) (web.Detail, *client) {
	t.Helper()
	joinCall(t, e, task, start, recs...)
	c := e.tokenClient(t, "comp-bot", users.Compliance)
	var d web.Detail
	c.get(t, "/api/interactions/"+task).want(t, http.StatusOK).decode(t, &d)
	return d, c
}

// joinCall joins an ended contact of task (alice of team east, answered at
// start) and the recordings' STOPPED events.
func joinCall(t *testing.T, e *testEnv, task string, start time.Time, recs ...callrec.Recording) {
	t.Helper()
	ctx := context.Background()
	contact := callrec.Contact{TaskSID: task, AccountSID: "AC1", Status: callrec.ContactEnded, CustomerCall: "CAcust",
		Direction: "inbound", From: "+15550009999", To: "+15551230000", QueueName: "sales", TaskVersion: 5,
		CreatedAt: start.Add(-5 * time.Second), EndedAt: start.Add(70 * time.Second),
		Connections: []callrec.Connection{{ReservationSID: "WR1", WorkerSID: "WK1", AgentExtension: "alice", Team: "east",
			Status: callrec.ConnEnded, Version: 3, Monitored: true, OfferedAt: start.Add(-2 * time.Second), AnsweredAt: start,
			WrapUpAt: start.Add(62 * time.Second), EndedAt: start.Add(70 * time.Second)}}}
	if err := e.joiner.Contact(ctx, contact); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := e.joiner.NotifyRecording(ctx, callrec.RecordingEvent{Type: callrec.RecordingStopped, At: r.StoppedAt, Recording: r}); err != nil {
			t.Fatal(err)
		}
	}
}

// streamRecording is a recording of task's stream sid on node, lasting as
// long as its audio (frames sample frames), stored in e.
func streamRecording(t *testing.T, e *testEnv, node uint16, counter uint64, task, sid string, start time.Time, frames int) callrec.Recording {
	t.Helper()
	n, err := callrec.NewINUM(node, counter)
	if err != nil {
		t.Fatal(err)
	}
	file := makeWAV(frames, byte(counter))
	r := finishedRecording(n, start, file)
	r.Stream = callrec.StreamInfo{StreamSID: sid, CallSID: "CAcust", AccountSID: "AC1", StartedAt: start, Adapter: "adapter-1",
		TrackNames: []string{"inbound", "outbound"}, CustomParameters: map[string]string{"task_sid": task, "agent": "alice", "team": "east"}}
	e.recs.put(r, file)
	e.files[n] = file
	return r
}

// TestMergedReplicasDetail: a dual-stream pair merged into one recording,
// written by two recorders (replicas 1 and 2); replica 1 is interrupted.
// The API passes each recording's per-copy accounting and supply runs
// through untouched, the call is complete, replica 2 is the one to play
// and the timeline places the call's events on it, and shows when each
// copy joined and ended.
func TestMergedReplicasDetail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const task = "WTmerged"
	start := t0.Add(10 * time.Second)
	r1, r2 := mergedReplicas(t, e, task, start)
	d, c := streamCall(t, e, task, start, r1, r2)
	checkMergedReplicas(t, d, c, r1, r2)
}

// mergedReplicas stores the recordings of a dual-stream pair merged by two
// recorders: replica 1 (20 s, interrupted by a crash) and replica 2 (60 s,
// complete), with the same copies (copy 2 joined at 1.5 s, aligned by
// content, and its socket closed at 40 s) and supply runs.
func mergedReplicas(t *testing.T, e *testEnv, task string, start time.Time) (r1, r2 callrec.Recording) {
	t.Helper()
	copies := []callrec.CopyAccounting{
		{Copy: 1, StreamSID: "MZcopy1", Adapter: "adapter-1", Alignment: callrec.AlignOrigin, Received: 6000, Supplied: 5990,
			Redundant: 10, JoinedAt: start, EndedAt: start.Add(60 * time.Second), EndReason: callrec.EndStop},
		{Copy: 2, StreamSID: "MZcopy2", Adapter: "adapter-2", Alignment: callrec.AlignContent, OffsetMS: 1480, Received: 3900,
			Supplied: 10, Redundant: 3850, BeforeStart: 40, JoinedAt: start.Add(1500 * time.Millisecond),
			EndedAt: start.Add(40 * time.Second), EndReason: callrec.EndSocketClosed},
	}
	supply := []callrec.SupplyRun{{Copy: 1, FromChunk: 1, ToChunk: 1200}, {Copy: 2, FromChunk: 1201, ToChunk: 1205}, {Copy: 1, FromChunk: 1206, ToChunk: 3000}}
	var recs []callrec.Recording
	for k, frames := range []int{1: 8000 * 20, 2: 8000 * 60} {
		if k == 0 {
			continue
		}
		r := streamRecording(t, e, 7, uint64(60+k), task, "MZcopy1", start, frames)
		r.Stream.Replica, r.Stream.Pair = k, &callrec.StreamPair{Group: "rec-WR1", Copy: 1, Copies: 2}
		r.Accounting.Copies = copies
		r.Accounting.Tracks = []callrec.TrackAccounting{
			{Track: "inbound", Expected: 3000, Received: 3000, FirstChunk: 1, LastChunk: 3000, Samples: 480000, Supply: supply},
			{Track: "outbound", Expected: 3000, Received: 3000, FirstChunk: 1, LastChunk: 3000, Samples: 480000, Supply: supply[:1], SupplyOmit: 7}}
		if k == 1 {
			r.State, r.EndReason = callrec.StateInterrupted, callrec.EndCrash
		}
		e.recs.put(r, e.files[r.INUM])
		recs = append(recs, r)
	}
	return recs[0], recs[1]
}

func checkMergedReplicas(t *testing.T, d web.Detail, c *client, r1, r2 callrec.Recording) {
	t.Helper()
	in := d.Interaction
	wantSets := []store.ReplicaSet{{StreamSID: "MZcopy1", Preferred: r2.INUM, Replicas: []store.Replica{
		{Replica: 1, INUMs: []callrec.INUM{r1.INUM}, Status: store.StatusInterrupted},
		{Replica: 2, INUMs: []callrec.INUM{r2.INUM}, Status: store.StatusComplete}}}}
	if diff := cmp.Diff(wantSets, in.Replicas); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}
	if in.Status != store.StatusComplete || len(in.Gaps) != 0 || len(in.Segments) != 1 || in.Segments[0].INUM != r2.INUM {
		t.Errorf("interaction: status %q, gaps %+v, segments %+v; want complete, no gap, alice on %s", in.Status, in.Gaps, in.Segments, r2.INUM)
	}

	// The recordings, accounting included, exactly as their recorders
	// keep them, in the call record and one by one.
	want := map[callrec.INUM]callrec.Recording{r1.INUM: r1, r2.INUM: r2}
	if len(d.Recordings) != 2 {
		t.Fatalf("%d recordings, want 2", len(d.Recordings))
	}
	for _, got := range d.Recordings {
		if diff := cmp.Diff(want[got.INUM], *got); diff != "" {
			t.Errorf("detail recording %s (-want +got):\n%s", got.INUM, diff)
		}
		var one callrec.Recording
		c.get(t, "/api/recordings/"+string(got.INUM)).want(t, http.StatusOK).decode(t, &one)
		if diff := cmp.Diff(want[got.INUM], one); diff != "" {
			t.Errorf("GET /api/recordings/%s (-want +got):\n%s", got.INUM, diff)
		}
	}

	// The timeline: alice's answer on the replica that plays; each
	// recording's copies; replica 1's interruption says what plays.
	kinds := map[string][]web.TimelineEntry{}
	for _, x := range d.Timeline {
		kinds[x.Kind] = append(kinds[x.Kind], x)
	}
	if a := kinds["answered"]; len(a) != 1 || a[0].INUM != r2.INUM || a[0].OffsetMS == nil || *a[0].OffsetMS != 0 {
		t.Errorf("answered entries %+v, want one on %s at 0", a, r2.INUM)
	}
	for _, k := range []string{web.KindCopyJoined, web.KindCopyEnded} {
		var on []callrec.INUM
		for _, x := range kinds[k] {
			on = append(on, x.INUM)
			if !strings.Contains(x.Label, "Copy 2 (stream MZcopy2, adapter adapter-2)") || x.OffsetMS == nil {
				t.Errorf("%s entry %+v: want copy 2 with its stream and adapter, placed", k, x)
			}
		}
		if !cmp.Equal(on, []callrec.INUM{r1.INUM, r2.INUM}) && !cmp.Equal(on, []callrec.INUM{r2.INUM, r1.INUM}) {
			t.Errorf("%s entries on %v, want one on each replica", k, on)
		}
	}
	if j := kinds[web.KindCopyJoined]; len(j) > 0 && (*j[0].OffsetMS != 1500 || !strings.Contains(j[0].Label, "aligned by content at 1.480 s")) {
		t.Errorf("copy_joined %+v: want at 1500 ms, aligned by content at 1.480 s", j[0])
	}
	if x := kinds["interrupted"]; len(x) != 1 || x[0].INUM != r1.INUM || !strings.Contains(x[0].Label, "the call plays replica 2 ("+string(r2.INUM)+")") {
		t.Errorf("interrupted entries %+v, want replica 1's, naming replica 2 as the one playing", x)
	}
}

// TestRestartGapDetail: a stream fails and is replaced; the call record
// carries the audio lost between them, measured from the failed stream's
// audio end to the replacement stream's start, the timeline shows it as a
// stretch on the failed recording, and search results flag it.
func TestRestartGapDetail(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const task = "WTrestart"
	start := t0.Add(10 * time.Second)
	a, b := restartedStream(t, e, task, start)
	d, c := streamCall(t, e, task, start, b, a)
	checkRestartGap(t, d, c, task, a, b, start)
}

// restartedStream stores a stream that failed after 14.687 s of audio and
// its replacement, whose stream started 16.012 s after the failed one's
// (1.325 s lost).
func restartedStream(t *testing.T, e *testEnv, task string, start time.Time) (a, b callrec.Recording) {
	t.Helper()
	a = streamRecording(t, e, 7, 70, task, "MZfailed", start, 117496) // 14.687 s of audio
	a.Stream.StartedAt = start.Add(-40 * time.Millisecond)
	a.State, a.EndReason, a.StoppedAt = callrec.StateInterrupted, callrec.EndSocketClosed, start.Add(15*time.Second)
	b = streamRecording(t, e, 7, 71, task, "MZreplacement", start.Add(16*time.Second), 8000*40)
	b.Stream.StartedAt = start.Add(15972 * time.Millisecond) // 16.012 s after a's stream
	b.Stream.CustomParameters["restart_of"] = "MZfailed"
	e.recs.put(a, e.files[a.INUM])
	e.recs.put(b, e.files[b.INUM])
	return a, b
}

func checkRestartGap(t *testing.T, d web.Detail, c *client, task string, a, b callrec.Recording, start time.Time) {
	t.Helper()
	gapStart := start.Add(-40 * time.Millisecond).Add(14687 * time.Millisecond)
	wantGaps := []store.RestartGap{{FromINUM: a.INUM, ToINUM: b.INUM, FromStreamSID: "MZfailed", ToStreamSID: "MZreplacement",
		Start: gapStart, End: b.Stream.StartedAt, DurationMS: 1325, Cause: store.GapStreamRestart}}
	in := d.Interaction
	if diff := cmp.Diff(wantGaps, in.Gaps); diff != "" || in.GapMS != 1325 || in.Status != store.StatusPartial {
		t.Errorf("gap_ms %d, status %q; gaps (-want +got):\n%s", in.GapMS, in.Status, diff)
	}
	var gaps []web.TimelineEntry
	for _, x := range d.Timeline {
		if x.Kind == web.KindRestartGap {
			gaps = append(gaps, x)
		}
	}
	off := int64(14687)
	wantEntry := []web.TimelineEntry{{At: gapStart, End: b.Stream.StartedAt, DurationMS: 1325, Kind: web.KindRestartGap,
		INUM: a.INUM, OffsetMS: &off}}
	if diff := cmp.Diff(wantEntry, gaps, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Label" }, cmp.Ignore())); diff != "" {
		t.Errorf("restart_gap entries (-want +got):\n%s", diff)
	}
	if len(gaps) == 1 && !strings.Contains(gaps[0].Label, "No audio for 1.325 s") {
		t.Errorf("restart_gap label %q", gaps[0].Label)
	}

	var res struct {
		Items []store.Interaction `json:"items"`
	}
	c.get(t, "/api/interactions?task_sid="+task).want(t, http.StatusOK).decode(t, &res)
	if len(res.Items) != 1 || res.Items[0].GapMS != 1325 || len(res.Items[0].Gaps) != 1 {
		t.Errorf("search result %+v, want the call with gap_ms 1325", res.Items)
	}
}
