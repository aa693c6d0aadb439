package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"callrec"
	"callrec/recorder/bolt"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t)
	var want *callrec.Recording
	created, err := x.CreateRecording(ctx, func(inum callrec.INUM) *callrec.Recording {
		want = fullRecording(inum, t0)
		want.State = callrec.StateRecording
		return want
	})
	if err != nil {
		t.Fatal(err)
	}
	if created != want {
		t.Error("CreateRecording did not return fill's record")
	}
	got, err := x.FindRecordingByINUM(ctx, want.INUM)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("after create (-want +got):\n%s", diff)
	}

	want = fullRecording(want.INUM, t0)
	if err := x.PutRecording(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err = x.FindRecordingByINUM(ctx, want.INUM)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("after put (-want +got):\n%s", diff)
	}
	rs, _, err := x.FindRecordings(ctx, callrec.RecordingFilter{CallSID: want.Stream.CallSID})
	if err != nil || len(rs) != 1 {
		t.Fatalf("FindRecordings = %d, %v", len(rs), err)
	}
	if diff := cmp.Diff(want, rs[0], timeEqual); diff != "" {
		t.Errorf("FindRecordings (-want +got):\n%s", diff)
	}
}

// TestTracksFromNames checks StreamInfo.Tracks, which is not in the JSON,
// comes back from TrackNames, and that TrackNames is filled from Tracks.
func TestTracksFromNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t)
	r, err := x.CreateRecording(ctx, func(inum callrec.INUM) *callrec.Recording {
		r := basicRecording(inum, t0, "CA1", "MZ1")
		r.Stream.Tracks = []callrec.Track{callrec.TrackOutbound}
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := x.FindRecordingByINUM(ctx, r.INUM)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]callrec.Track{callrec.TrackOutbound}, got.Stream.Tracks); diff != "" {
		t.Errorf("tracks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"outbound"}, got.Stream.TrackNames); diff != "" {
		t.Errorf("track names (-want +got):\n%s", diff)
	}
}

func TestFindRecordingByINUMErrors(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	_, err := x.FindRecordingByINUM(context.Background(), mustINUM(t, 5))
	wantCode(t, err, callrec.ENOTFOUND)
	_, err = x.FindRecordingByINUM(context.Background(), "0042000000000050")
	wantCode(t, err, callrec.EINVALID)
}

func TestPutRecordingMovesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t)
	r := create(t, x, t0, "CA-old", "MZ-old")
	moved := *r
	moved.Stream.CallSID, moved.Stream.StreamSID = "CA-new", "MZ-new"
	moved.StartedAt = t0.Add(time.Hour)
	if err := x.PutRecording(ctx, &moved); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    callrec.RecordingFilter
		want int
	}{
		{callrec.RecordingFilter{CallSID: "CA-old"}, 0},
		{callrec.RecordingFilter{StreamSID: "MZ-old"}, 0},
		{callrec.RecordingFilter{CallSID: "CA-new"}, 1},
		{callrec.RecordingFilter{StreamSID: "MZ-new"}, 1},
		{callrec.RecordingFilter{To: t0.Add(time.Minute)}, 0},
		{callrec.RecordingFilter{From: t0.Add(time.Hour)}, 1},
		{callrec.RecordingFilter{}, 1},
	} {
		_, total, err := x.FindRecordings(ctx, tt.f)
		if err != nil || total != tt.want {
			t.Errorf("FindRecordings(%+v) total = %d, %v; want %d", tt.f, total, err, tt.want)
		}
	}
}

func TestPutRecordingErrors(t *testing.T) {
	t.Parallel()
	x := newIndex(t)
	wantCode(t, x.PutRecording(context.Background(), basicRecording(mustINUM(t, 1), t0, "CA1", "MZ1")), callrec.ENOTFOUND)
	wantCode(t, x.PutRecording(context.Background(), nil), callrec.EINVALID)
	r := create(t, x, t0, "CA1", "MZ1")
	r.Node = testNode + 1
	wantCode(t, x.PutRecording(context.Background(), r), callrec.EINVALID)
}

func TestPutRecordings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t)
	var rs []*callrec.Recording
	for i := range 3 {
		rs = append(rs, create(t, x, t0.Add(time.Duration(i)*time.Second), "CA1", fmt.Sprint("MZ", i)))
	}
	for _, r := range rs {
		r.Accounting.Messages.MediaSeen = 50
	}
	if err := x.PutRecordings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		got, err := x.FindRecordingByINUM(ctx, r.INUM)
		if err != nil || got.Accounting.Messages.MediaSeen != 50 {
			t.Errorf("%s not updated: %v", r.INUM, err)
		}
	}
	if err := x.PutRecordings(ctx, nil); err != nil {
		t.Errorf("empty PutRecordings: %v", err)
	}

	// One unknown record rolls back the whole batch.
	rs[0].Accounting.Messages.MediaSeen = 99
	unknown := basicRecording(mustINUM(t, 77), t0, "CA1", "MZ9")
	wantCode(t, x.PutRecordings(ctx, []*callrec.Recording{rs[0], unknown}), callrec.ENOTFOUND)
	got, err := x.FindRecordingByINUM(ctx, rs[0].INUM)
	if err != nil || got.Accounting.Messages.MediaSeen != 50 {
		t.Errorf("failed batch was partly stored: %+v, %v", got.Accounting.Messages, err)
	}
}

// findFixture creates recordings 1..10 (index i = counter-1) started i
// minutes after t0, except that 9 shares 8's time; even ones on call CA-a,
// odd on CA-b, stream MZ-i; every third (0, 3, 6, 9) complete.
func findFixture(tb testing.TB) (*bolt.Index, []callrec.INUM) {
	tb.Helper()
	x := newIndex(tb)
	var ns []callrec.INUM
	for i := range 10 {
		started := t0.Add(time.Duration(min(i, 8)) * time.Minute)
		call := "CA-a"
		if i%2 == 1 {
			call = "CA-b"
		}
		r := create(tb, x, started, call, fmt.Sprint("MZ-", i))
		if i%3 == 0 {
			r.State, r.EndReason = callrec.StateComplete, callrec.EndStop
			if err := x.PutRecording(context.Background(), r); err != nil {
				tb.Fatal(err)
			}
		}
		ns = append(ns, r.INUM)
	}
	return x, ns
}

func TestFindRecordings(t *testing.T) {
	t.Parallel()
	x, n := findFixture(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	pick := func(is ...int) []callrec.INUM {
		out := []callrec.INUM{}
		for _, i := range is {
			out = append(out, n[i])
		}
		return out
	}
	tests := []struct {
		name  string
		f     callrec.RecordingFilter
		want  []callrec.INUM
		total int
	}{
		{"all newest first", callrec.RecordingFilter{}, pick(9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 10},
		{"call", callrec.RecordingFilter{CallSID: "CA-a"}, pick(8, 6, 4, 2, 0), 5},
		{"call in window", callrec.RecordingFilter{CallSID: "CA-b", From: at(3), To: at(7)}, pick(5, 3), 2},
		{"call and state", callrec.RecordingFilter{CallSID: "CA-a", State: callrec.StateComplete}, pick(6, 0), 2},
		{"call and stream", callrec.RecordingFilter{CallSID: "CA-a", StreamSID: "MZ-4"}, pick(4), 1},
		{"call and other call's stream", callrec.RecordingFilter{CallSID: "CA-b", StreamSID: "MZ-4"}, pick(), 0},
		{"stream", callrec.RecordingFilter{StreamSID: "MZ-4"}, pick(4), 1},
		{"stream outside window", callrec.RecordingFilter{StreamSID: "MZ-4", From: at(5)}, pick(), 0},
		{"window", callrec.RecordingFilter{From: at(2), To: at(5)}, pick(4, 3, 2), 3},
		{"from only", callrec.RecordingFilter{From: at(8)}, pick(9, 8), 2},
		{"to only", callrec.RecordingFilter{To: at(1)}, pick(0), 1},
		{"from after to", callrec.RecordingFilter{From: at(5), To: at(2)}, pick(), 0},
		{"before 1970", callrec.RecordingFilter{To: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, pick(), 0},
		{"offset and limit", callrec.RecordingFilter{Offset: 2, Limit: 3}, pick(7, 6, 5), 10},
		{"offset past end", callrec.RecordingFilter{Offset: 20}, pick(), 10},
		{"state complete", callrec.RecordingFilter{State: callrec.StateComplete}, pick(9, 6, 3, 0), 4},
		{"state recording", callrec.RecordingFilter{State: callrec.StateRecording}, pick(8, 7, 5, 4, 2, 1), 6},
		{"state recording paged", callrec.RecordingFilter{State: callrec.StateRecording, Offset: 1, Limit: 2}, pick(7, 5), 6},
		{"state interrupted", callrec.RecordingFilter{State: callrec.StateInterrupted}, pick(), 0},
		{"unknown call", callrec.RecordingFilter{CallSID: "CA-zzz"}, pick(), 0},
		{"unknown stream", callrec.RecordingFilter{StreamSID: "MZ-zzz"}, pick(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, total, err := x.FindRecordings(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, inums(rs)); diff != "" {
				t.Errorf("inums (-want +got):\n%s", diff)
			}
			if total != tt.total {
				t.Errorf("total = %d, want %d", total, tt.total)
			}
		})
	}
}

func TestFindRecordingsLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	x := newIndex(t)
	for i := range bolt.DefaultLimit + 5 {
		create(t, x, t0.Add(time.Duration(i)*time.Second), "CA1", "MZ1")
	}
	rs, total, err := x.FindRecordings(ctx, callrec.RecordingFilter{})
	if err != nil || len(rs) != bolt.DefaultLimit || total != bolt.DefaultLimit+5 {
		t.Errorf("default limit: %d records, total %d, %v", len(rs), total, err)
	}
	rs, _, err = x.FindRecordings(ctx, callrec.RecordingFilter{Limit: bolt.MaxLimit})
	if err != nil || len(rs) != bolt.DefaultLimit+5 {
		t.Errorf("max limit: %d records, %v", len(rs), err)
	}
	for _, f := range []callrec.RecordingFilter{{Limit: bolt.MaxLimit + 1}, {Limit: -1}, {Offset: -1}} {
		_, _, err := x.FindRecordings(ctx, f)
		wantCode(t, err, callrec.EINVALID)
	}
}

func TestOpenRecordings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "index.db")
	x := openIndex(t, path)
	if err := x.ClaimNode(testNode); err != nil {
		t.Fatal(err)
	}
	wantOpen := func(x *bolt.Index, want ...callrec.INUM) {
		t.Helper()
		rs, err := x.OpenRecordings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(append([]callrec.INUM{}, want...), inums(rs)); diff != "" {
			t.Errorf("open (-want +got):\n%s", diff)
		}
	}
	wantOpen(x)
	a := create(t, x, t0, "CA1", "MZ1")
	b := create(t, x, t0, "CA2", "MZ2")
	c := create(t, x, t0, "CA3", "MZ3")
	wantOpen(x, a.INUM, b.INUM, c.INUM)

	b.State, b.EndReason = callrec.StateComplete, callrec.EndStop
	if err := x.PutRecording(ctx, b); err != nil {
		t.Fatal(err)
	}
	wantOpen(x, a.INUM, c.INUM)

	c.State, c.EndReason = callrec.StateInterrupted, callrec.EndSocketClosed
	a.Accounting.Patched = 1 // still recording: stays open
	if err := x.PutRecordings(ctx, []*callrec.Recording{a, c}); err != nil {
		t.Fatal(err)
	}
	wantOpen(x, a.INUM)

	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openIndex(t, path)
	wantOpen(x, a.INUM)
}
