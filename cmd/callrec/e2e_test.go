package main

import (
	"slices"

	"github.com/google/go-cmp/cmp"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/simulate"
)

// TestEndToEnd: 20 concurrent signed calls of 10 s through `run`; every
// recording equals, sample for sample, what was sent, with exact accounting.
func TestEndToEnd(t *testing.T) {
	s := startRun(t, testConfig(t))
	sum, err := simulate.Run(t.Context(), simConfig(s, 20, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 {
		t.Fatalf("%d calls failed: %v", sum.Failed, sum.Calls[0].Err)
	}
	for _, c := range sum.Calls {
		rec := finished(t, s, c.StreamSID)
		if rec.State != callrec.StateComplete || rec.EndReason != callrec.EndStop {
			t.Errorf("call %d: state %s (%s %s), want complete by stop", c.Index, rec.State, rec.EndReason, rec.EndDetail)
		}
		if rec.Stream.CallSID != c.CallSID || rec.Stream.CustomParameters["call_index"] == "" {
			t.Errorf("call %d: stream metadata %+v", c.Index, rec.Stream)
		}
		if _, err := callrec.ParseINUM(string(rec.INUM)); err != nil {
			t.Errorf("call %d: %v", c.Index, err)
		}
		checkAccounting(t, c, rec)
		left, right := audio(t, s, rec)
		if len(left) != 500*160 {
			t.Errorf("call %d: %d samples, want %d", c.Index, len(left), 500*160)
		}
		if err := sameAudio(left, c.Tracks[callrec.TrackInbound].Timeline); err != nil {
			t.Errorf("call %d inbound (left): %v", c.Index, err)
		}
		if err := sameAudio(right, c.Tracks[callrec.TrackOutbound].Timeline); err != nil {
			t.Errorf("call %d outbound (right): %v", c.Index, err)
		}
	}
	var list struct{ Total int }
	getJSON(t, s.HTTPURL+"/api/recordings?state=complete", &list)
	if list.Total != 20 {
		t.Errorf("%d complete recordings, want 20", list.Total)
	}
}

// TestImpairments: frames dropped, duplicated and reordered on purpose are
// reported exactly, and the audio is still placed sample for sample.
func TestImpairments(t *testing.T) {
	s := startRun(t, testConfig(t))
	cfg := simConfig(s, 6, 4*time.Second)
	cfg.Drop, cfg.Duplicate, cfg.Reorder, cfg.Seed = 0.03, 0.03, 0.03, 42
	sum, err := simulate.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var drops, dups, reorders int64
	for _, c := range sum.Calls {
		if c.Err != nil {
			t.Fatalf("call %d: %v", c.Index, c.Err)
		}
		rec := finished(t, s, c.StreamSID)
		checkAccounting(t, c, rec)
		left, right := audio(t, s, rec)
		if err := sameAudio(left, c.Tracks[callrec.TrackInbound].Timeline); err != nil {
			t.Errorf("call %d inbound: %v", c.Index, err)
		}
		if err := sameAudio(right, c.Tracks[callrec.TrackOutbound].Timeline); err != nil {
			t.Errorf("call %d outbound: %v", c.Index, err)
		}
		for _, tr := range c.Tracks {
			drops, dups, reorders = drops+tr.Dropped, dups+tr.Duplicated, reorders+tr.Reordered
		}
	}
	if drops == 0 || dups == 0 || reorders == 0 {
		t.Fatalf("the simulator impaired too little to test anything: %d drops, %d dups, %d reorders", drops, dups, reorders)
	}
}

// checkAccounting compares a recording's frame accounting with exactly what
// the simulator did to each track.
func checkAccounting(t *testing.T, c simulate.CallResult, rec *callrec.Recording) {
	t.Helper()
	if len(rec.Accounting.Tracks) != 2 {
		t.Fatalf("call %d: %d tracks in accounting", c.Index, len(rec.Accounting.Tracks))
	}
	var tail int64
	for i, ta := range rec.Accounting.Tracks {
		sent := c.Tracks[i]
		// Drops after the last delivered chunk are invisible to chunk
		// numbers; stop's sequenceNumber reveals them as tail_missing.
		last := uint32(sent.Frames)
		for slices.Contains(sent.DroppedChunks, last) {
			last--
		}
		var inside []uint32
		for _, ch := range sent.DroppedChunks {
			if ch < last {
				inside = append(inside, ch)
			}
		}
		first := uint32(1)
		for slices.Contains(sent.DroppedChunks, first) {
			first++
		}
		tail += int64(sent.Frames) - int64(last)
		want := callrec.TrackAccounting{Track: callrec.Track(i).String(), Expected: int64(last),
			Received: sent.Frames - sent.Dropped, Duplicates: sent.Duplicated, OutOfOrder: sent.Reordered,
			Missing: int64(len(inside)), FirstChunk: first, LastChunk: last}
		got := ta
		got.Gaps, got.Samples, got.GapsOmit, got.Overflow = nil, 0, 0, 0
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("call %d %s accounting (-want +got):\n%s", c.Index, want.Track, diff)
		}
		if ta.Samples != 160*want.Received {
			t.Errorf("call %d %s: %d samples, want %d", c.Index, want.Track, ta.Samples, 160*want.Received)
		}
		var gapChunks []uint32
		for _, g := range ta.Gaps {
			if g.Cause != callrec.GapMissing {
				t.Errorf("call %d %s: unexpected %s gap %+v", c.Index, want.Track, g.Cause, g)
				continue
			}
			if g.StartMS != int64(g.FromChunk-1)*20 || g.EndMS != int64(g.ToChunk)*20 {
				t.Errorf("call %d %s: gap %+v has wrong times", c.Index, want.Track, g)
			}
			for ch := g.FromChunk; ch <= g.ToChunk; ch++ {
				gapChunks = append(gapChunks, ch)
			}
		}
		slices.Sort(inside)
		if !slices.Equal(gapChunks, inside) {
			t.Errorf("call %d %s: gaps cover chunks %v, dropped were %v", c.Index, want.Track, gapChunks, inside)
		}
	}
	m := rec.Accounting.Messages
	if m.StopSeq != c.LastSeq || m.TailMissed != tail {
		t.Errorf("call %d messages %+v, want stop %d and tail %d", c.Index, m, c.LastSeq, tail)
	}
}

// TestDemo: `run --demo` without a token generates one, keeps signature
// checks on, and plays Flex calls through the whole CTI flow: recordings
// appear tagged with their task and agent.
func TestDemo(t *testing.T) {
	cfg := testConfig(t)
	cfg.AuthToken, cfg.Demo = "", true
	s := startRun(t, cfg)
	if s.cfg.Media.AuthToken == "" || s.cfg.Media.SkipSignature {
		t.Fatal("demo runs without signature checks")
	}
	callrectest.Eventually(t, 30*time.Second, "a demo call is being recorded", func() bool {
		var list struct{ Recordings []callrec.Recording }
		getJSON(t, s.HTTPURL+"/api/recordings", &list)
		for _, r := range list.Recordings {
			if r.Stream.CustomParameters["task_sid"] != "" && r.Stream.CustomParameters["agent"] != "" && r.Accounting.Messages.MediaSeen > 0 {
				return true
			}
		}
		return false
	})
}
