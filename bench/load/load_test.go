package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"callrec"
	"callrec/simulate"
)

// rec is a recording on recorder node holding received frames per track.
func rec(node int, state callrec.RecordingState, in, out, missing int64) held {
	return held{node: node, rec: callrec.Recording{State: state, Accounting: callrec.Accounting{Tracks: []callrec.TrackAccounting{
		{Track: "inbound", Received: in, Missing: missing},
		{Track: "outbound", Received: out},
	}}}}
}

func TestJudge(t *testing.T) {
	var call simulate.CallResult
	call.Tracks[0].Frames, call.Tracks[1].Frames = 100, 100
	done := callrec.StateComplete
	tests := []struct {
		name   string
		copies int
		recs   []held
		want   check
	}{
		{"recorded once", 1, []held{rec(0, done, 100, 100, 0)}, check{}},
		{"not recorded", 1, nil, check{lost: 200, incomplete: 1}},
		{"frames lost", 1, []held{rec(1, done, 97, 100, 0)}, check{lost: 3, incomplete: 1}},
		{"a gap", 1, []held{rec(1, done, 100, 100, 2)}, check{incomplete: 1}},
		{"still recording", 1, []held{rec(1, callrec.StateRecording, 100, 100, 0)}, check{incomplete: 1}},
		{"interrupted", 1, []held{rec(1, callrec.StateInterrupted, 100, 100, 0)}, check{incomplete: 1}},
		{"split in two", 1, []held{rec(0, done, 50, 50, 0), rec(1, done, 50, 50, 0)}, check{lost: 200, incomplete: 1}},
		{"dual on two recorders", 2, []held{rec(0, done, 100, 100, 0), rec(1, done, 100, 100, 0)}, check{}},
		{"dual on one recorder", 2, []held{rec(1, done, 100, 100, 0), rec(1, done, 100, 100, 0)}, check{incomplete: 1, sameNode: 1}},
		{"dual recorded once", 2, []held{rec(0, done, 100, 100, 0)}, check{lost: 200, incomplete: 1}},
		{"dual, one copy short", 2, []held{rec(0, done, 100, 100, 0), rec(1, done, 100, 90, 0)}, check{lost: 10, incomplete: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(call, tt.recs, tt.copies); got != tt.want {
				t.Errorf("judge = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// buildCallrec builds cmd/callrec into a temporary directory.
func buildCallrec(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callrec")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/callrec")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build callrec: %v\n%s", err, out)
	}
	return bin
}

// TestPoolTopology runs a small load through the pool topology, single
// and dual recording, and checks that every call was recorded as often as
// it must be; then that the verification sees a missing copy.
func TestPoolTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("builds callrec and starts child processes")
	}
	bin := buildCallrec(t)
	for _, dual := range []bool{false, true} {
		pc := poolConfig{Bin: bin, Dir: t.TempDir(), Adapters: 2, Recorders: 2, Dual: dual}
		t.Run(pc.name(), func(t *testing.T) {
			if dual {
				cmd, err := commandOf(bin, "mediaadapter", "adapter")
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := hasFlag(bin, cmd, "dual-recording"); err != nil || !ok {
					t.Skipf("callrec %s has no --dual-recording yet (%v)", cmd, err)
				}
			}
			p, err := startPool(pc)
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			if got := len(p.procs); got != 5 {
				t.Errorf("%d processes measured, want 2 adapters, 2 recorders and the lb", got)
			}
			const calls = 6
			r, err := measure(p, calls, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// Not r.sustained(): whether the calls kept real time depends
			// on what else this machine runs.
			if r.check != (check{}) || r.failed != 0 || !r.recorded || r.framesSent != calls*2*250 {
				t.Errorf("result %+v: want every frame of %d calls recorded %d time(s)", r, calls, pc.copies())
			}
			if r.peak < 1 || r.peak > calls {
				t.Errorf("peak open calls %d, want 1 to %d: the adapters' streams were not sampled", r.peak, calls)
			}
			if r.cpu <= 0 || r.rssPeak <= 0 {
				t.Errorf("cpu %v, peak rss %d: the processes were not measured", r.cpu, r.rssPeak)
			}
			// Asking for one copy more than was written must fail every call.
			sum, err := simulate.Run(t.Context(), simulate.Config{URL: p.mediaURL, AuthToken: token, Calls: 2, Duration: time.Second})
			if err != nil || sum.Failed != 0 {
				t.Fatalf("simulate: %v, %d failed", err, sum.Failed)
			}
			p.waitIdle()
			c, err := verifyRecorded(p.apis, p.apiToken, pc.copies()+1, sum)
			if err != nil {
				t.Fatal(err)
			}
			if c.incomplete != 2 || c.lost != 2*2*50 {
				t.Errorf("verifying %d copies of 2 calls recorded %d time(s): %+v, want both incomplete, 200 frames lost", pc.copies()+1, pc.copies(), c)
			}
		})
	}
}
