package simulate_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/internal/twilio"
	"callrec/simulate"
)

// checkCallAudio checks that every media message of a stream carries the
// call's audio at the stream's CallFrame plus its chunk, and returns the
// arrival time of each inbound chunk.
func checkCallAudio(t *testing.T, name string, s *stream, res simulate.CallResult) map[uint32]time.Time {
	t.Helper()
	arrived := map[uint32]time.Time{}
	ms := medias(t, s)
	if len(ms) == 0 {
		t.Fatalf("%s: no media", name)
	}
	i := 0
	for j, b := range s.msgs {
		if !bytes.Contains(b, []byte(`"event":"media"`)) {
			continue
		}
		m := ms[i]
		i++
		want := simulate.CallAudio(m.track, res.Index, res.CallFrame+int(m.chunk)-1, 1)
		if !bytes.Equal(m.audio, want) || !bytes.Equal(want, simulate.LoopAudio(m.track, res.LoopFrame+int(m.chunk)-1, 1)) {
			t.Fatalf("%s: %s chunk %d is not call frame %d of call %d", name, m.track, m.chunk, res.CallFrame+int(m.chunk)-1, res.Index)
		}
		if m.track == callrec.TrackInbound {
			arrived[m.chunk] = s.arrived[j]
		}
	}
	for tr := range callrec.NumTracks {
		tl := res.Tracks[tr].Timeline
		if want := simulate.CallAudio(callrec.Track(tr), res.Index, res.CallFrame, len(tl)/simulate.FrameBytes); !bytes.Equal(tl, want) {
			t.Errorf("%s: the %s timeline (%d bytes) is not the call's audio from frame %d", name, callrec.Track(tr), len(tl), res.CallFrame)
		}
	}
	return arrived
}

// TestTwilioStreamsOfACallShareAudio: two streams started on one call, the
// second a while after the first (both live at once, as dual-stream
// capture does), carry the same call audio: the second starts at the call
// frame the first is playing then, and each result says where its chunk 1
// is. The call's forks are then full: a third stream is refused.
func TestTwilioStreamsOfACallShareAudio(t *testing.T) {
	const acct, token = "ACe268443e43d93dab7ebef303bbe9642f", "authtoken123"
	r := newRecorder(t, nil)
	tw := simulate.NewTwilio(acct, token, simulate.Config{URL: "ws://unused", Duration: time.Minute, KeepAudio: true})
	api := httptest.NewServer(tw)
	t.Cleanup(api.Close)
	t.Cleanup(tw.Close)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: token, BaseURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	const call, other = "CAc0bb2f535401483f8461ddeef83c2d68", "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
	tw.AddCall(call)
	tw.AddCall(other)
	ctx := context.Background()
	start := func(callSID, name string) *twilio.Stream {
		t.Helper()
		s, err := rc.CreateStream(ctx, twilio.StartStream{CallSID: callSID, URL: r.url, Name: name, Track: "both_tracks"})
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return s
	}
	framesOf := func(sid string) int {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range r.streams {
			if len(s.msgs) > 1 && bytes.Contains(s.msgs[1], []byte(sid)) {
				return (len(s.msgs) - 2) / 2 // frames: one media message per track
			}
		}
		return 0
	}
	c1 := start(call, "rec-WT1-c1")
	callrectest.Eventually(t, 5*time.Second, "copy 1 sending", func() bool { return framesOf(c1.SID) > 30 })
	c2 := start(call, "rec-WT1-c2")
	o := start(other, "rec-WT2-c1") // another call: other audio
	callrectest.Eventually(t, 5*time.Second, "copy 2 sending", func() bool { return framesOf(c2.SID) > 30 && framesOf(o.SID) > 0 })
	_, err = rc.CreateStream(ctx, twilio.StartStream{CallSID: call, URL: r.url, Name: "rec-WT1-c3", Track: "both_tracks"})
	var ae *twilio.APIError
	if !errors.As(err, &ae) || ae.Code != 21218 {
		t.Errorf("a third both_tracks stream on the call: %v, want refused with 21218", err)
	}
	tw.EndCall(call)
	tw.EndCall(other)
	callrectest.Eventually(t, 5*time.Second, "streams finished", func() bool { return len(tw.Results()) == 3 })
	res := tw.Results()
	r1, r2, ro := res[c1.SID], res[c2.SID], res[o.SID]
	for _, x := range []simulate.CallResult{r1, r2, ro} {
		if x.Err != nil || !x.StopSent {
			t.Fatalf("stream %s: %+v", x.StreamSID, x)
		}
	}
	if r1.Index != r2.Index || ro.Index == r1.Index {
		t.Errorf("call indexes %d, %d and %d for the other call", r1.Index, r2.Index, ro.Index)
	}
	if r1.CallFrame != 0 || r2.CallFrame < 30 || ro.CallFrame != 0 {
		t.Errorf("call frames %d, %d (started after frame 30 was sent), %d (another call)", r1.CallFrame, r2.CallFrame, ro.CallFrame)
	}
	got := r.wait()
	a1 := checkCallAudio(t, "copy 1", got[c1.SID], r1)
	a2 := checkCallAudio(t, "copy 2", got[c2.SID], r2)
	checkCallAudio(t, "other call", got[o.SID], ro)
	// In real time, copy 2 starts where the call's clock is: its chunk 1
	// went out as many frames after copy 1's chunk 1 (the call's epoch) as
	// its CallFrame, give or take scheduling. (Copy 1's later chunks are no
	// measure: a stalled sender forgets the time it lost.)
	elapsed := a2[1].Sub(a1[1])
	if d := r2.CallFrame - int((elapsed+simulate.FrameDuration/2)/simulate.FrameDuration); d < -5 || d > 5 {
		t.Errorf("copy 2 starts at call frame %d, %v after copy 1 started", r2.CallFrame, elapsed)
	}
}

// TestCallClockNotRealtime: without real time, every stream of a call
// starts at call frame 0, however late.
func TestCallClockNotRealtime(t *testing.T) {
	r := newRecorder(t, nil)
	clock := simulate.NewCallClock()
	cfg := simulate.Config{URL: r.url, Duration: 400 * time.Millisecond, Realtime: fast(), KeepAudio: true}
	var res []simulate.CallResult
	for _, sid := range []string{"MZ11111111111111111111111111111111", "MZ22222222222222222222222222222222"} {
		x, err := simulate.Stream(context.Background(), cfg, simulate.StreamSpec{CallSID: "CA11111111111111111111111111111111",
			StreamSID: sid, Index: 5, Clock: clock})
		if err != nil || x.Err != nil {
			t.Fatalf("%s: %v, %v", sid, err, x.Err)
		}
		res = append(res, x)
	}
	got := r.wait()
	for i, x := range res {
		if x.CallFrame != 0 {
			t.Errorf("stream %d: call frame %d, want 0", i+1, x.CallFrame)
		}
		checkCallAudio(t, x.StreamSID, got[x.StreamSID], x)
	}
	if !bytes.Equal(res[0].Tracks[0].Timeline, res[1].Tracks[0].Timeline) {
		t.Error("the two streams carry different audio")
	}
}

// TestRunIsCallAudio: a call of Run (no clock) carries its call's audio
// from frame 0.
func TestRunIsCallAudio(t *testing.T) {
	r := newRecorder(t, nil)
	sum := run(t, t.Context(), simulate.Config{URL: r.url, Calls: 2, Duration: 200 * time.Millisecond, Realtime: fast(), KeepAudio: true})
	got := r.wait()
	for _, c := range sum.Calls {
		if c.CallFrame != 0 {
			t.Errorf("call %d: call frame %d", c.Index, c.CallFrame)
		}
		checkCallAudio(t, c.StreamSID, got[c.StreamSID], c)
	}
}

// TestLoopAudioWraps: the loop is endless both ways, and a call's audio is
// the loop from its start.
func TestLoopAudioWraps(t *testing.T) {
	one := simulate.LoopAudio(callrec.TrackInbound, 0, 1)
	n := 0
	for !bytes.Equal(simulate.LoopAudio(callrec.TrackInbound, n+1, 1), one) || n < 10 {
		n++
		if n > 1e6 {
			t.Fatal("the loop never comes back to its first frame")
		}
	}
	n++ // the loop's length, or a period of it
	for _, from := range []int{-n - 3, -1, 0, n - 2, 5*n + 7} {
		got := simulate.LoopAudio(callrec.TrackOutbound, from, 4)
		want := simulate.LoopAudio(callrec.TrackOutbound, from+n, 4)
		if len(got) != 4*simulate.FrameBytes || !bytes.Equal(got, want) {
			t.Errorf("LoopAudio(%d, 4): %d bytes, equal to one loop later %v", from, len(got), bytes.Equal(got, want))
		}
	}
	if got := simulate.LoopAudio(callrec.TrackInbound, 3, 0); len(got) != 0 {
		t.Errorf("0 frames: %d bytes", len(got))
	}
	if !bytes.Equal(simulate.CallAudio(callrec.TrackInbound, 4, -2, 6), simulate.CallAudio(callrec.TrackInbound, 4, n-2, 6)) {
		t.Error("CallAudio does not wrap like the loop")
	}
}
