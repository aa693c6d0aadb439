package streams_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"callrec"
	"callrec/internal/twiliotest"
	"callrec/tracker/streams"
)

// byName returns the fake's streams by name (the last one of a name).
func byName(fake *twiliotest.Fake) map[string]twiliotest.Stream {
	out := map[string]twiliotest.Stream{}
	for _, s := range fake.Streams() {
		out[s.Name] = s
	}
	return out
}

// wantCopy checks one copy of a dual stream as Twilio got it.
func wantCopy(t *testing.T, s twiliotest.Stream, base string, k int, name string) {
	t.Helper()
	wantURL := "wss://rec.example.com/media/pair/" + base + "/" + strconv.Itoa(k)
	if s.Name != name || s.URL != wantURL || s.CallSID != call || s.Track != "both_tracks" {
		t.Errorf("copy %d: name %q url %q call %s track %s; want %q, %q, %s, both_tracks", k, s.Name, s.URL, s.CallSID, s.Track, name, wantURL, call)
	}
	p := s.Params
	if p[callrec.ParamPair] != base || p[callrec.ParamCopy] != strconv.Itoa(k) || p[callrec.ParamCopies] != "2" ||
		p["task_sid"] != "WT1" || p["agent"] != "alice@example.com" {
		t.Errorf("copy %d: parameters %v", k, p)
	}
	pair, err := callrec.PairFromParams(p)
	if err != nil || pair == nil || *pair != (callrec.StreamPair{Group: base, Copy: k, Copies: 2}) {
		t.Errorf("copy %d: PairFromParams = %+v, %v", k, pair, err)
	}
}

// TestDualStreamsStartStop: one start decision starts two streams on the
// call, both live at once, each an intent of its own; redelivered
// decisions start nothing more; one stop decision stops both.
func TestDualStreamsStartStop(t *testing.T) {
	e := newEnv(t, streams.Config{DualStreams: true}, nil)
	e.fake.AddCall(call)
	if !submit(t, e.m, startOrder("rec-WT1")) {
		t.Fatal("first submit ignored")
	}
	for k := 1; k <= 2; k++ {
		in := e.waitIntent(t, streams.StartKey(streams.CopyName("rec-WT1", k)))
		if in.State != streams.Done || in.Outcome != "started" || in.StreamSID == "" {
			t.Errorf("copy %d: start intent %+v", k, in)
		}
	}
	for range 3 {
		if submit(t, e.m, startOrder("rec-WT1")) {
			t.Error("a redelivered start was accepted")
		}
	}
	got := byName(e.fake)
	if len(got) != 2 {
		t.Fatalf("streams at Twilio: %+v", e.fake.Streams())
	}
	for k := 1; k <= 2; k++ {
		s := got["rec-WT1-c"+strconv.Itoa(k)]
		wantCopy(t, s, "rec-WT1", k, "rec-WT1-c"+strconv.Itoa(k))
		if s.Status != "in-progress" {
			t.Errorf("copy %d is %s, want both live at once", k, s.Status)
		}
	}
	submit(t, e.m, stopOrder("rec-WT1"))
	if submit(t, e.m, stopOrder("rec-WT1")) {
		t.Error("a redelivered stop was accepted")
	}
	for k := 1; k <= 2; k++ {
		if in := e.waitIntent(t, streams.StopKey(streams.CopyName("rec-WT1", k))); in.Outcome != "stopped" {
			t.Errorf("copy %d: stop intent %+v", k, in)
		}
	}
	reqs := e.fake.Requests()
	if c, s := count(reqs, twiliotest.OpCreateStream, http.StatusOK), count(reqs, twiliotest.OpStopStream, http.StatusOK); c != 2 || s != 2 || len(reqs) != 4 {
		t.Errorf("%d creates and %d stops answered 200 of %d requests, want 2, 2 of 4", c, s, len(reqs))
	}
	for _, s := range e.fake.Streams() {
		if s.Status != "stopped" {
			t.Errorf("%s is %s after the stop", s.Name, s.Status)
		}
	}
}

// TestDualStreamsRestartOneCopy: Twilio reports one copy dead; only that
// copy is replaced, to the same adapter URL, with its pair parameters and
// a name that parses back to the decision's stream; the other copy runs
// on untouched; the stop stops the live copy and the replacement.
func TestDualStreamsRestartOneCopy(t *testing.T) {
	e := newEnv(t, streams.Config{DualStreams: true}, nil)
	e.fake.AddCall(call)
	submit(t, e.m, startOrder("rec-WT1"))
	e.waitIntent(t, streams.StartKey("rec-WT1-c1"))
	c2 := e.waitIntent(t, streams.StartKey("rec-WT1-c2"))
	// Twilio ends the dead stream before posting stream-error.
	if !e.fake.StreamEnded(c2.StreamSID) {
		t.Fatal("copy 2 was not live")
	}
	ctx := context.Background()
	if ok, err := e.m.StreamFailed(ctx, "rec-WT1-c2", c2.StreamSID, "connection lost"); err != nil || !ok {
		t.Fatalf("StreamFailed(copy 2) = %v, %v; want a restart", ok, err)
	}
	if ok, err := e.m.StreamFailed(ctx, "rec-WT1-c2", c2.StreamSID, "again"); err != nil || ok {
		t.Errorf("repeated StreamFailed = %v, %v; want nothing", ok, err)
	}
	in := e.waitIntent(t, "restart:rec-WT1-c2:1")
	if in.Outcome != "started" {
		t.Fatalf("replacement intent %+v", in)
	}
	repl := byName(e.fake)["rec-WT1-c2-restart1"]
	wantCopy(t, repl, "rec-WT1", 2, "rec-WT1-c2-restart1")
	if repl.Params["restart_of"] != c2.StreamSID || repl.Params["restart"] != "1" {
		t.Errorf("replacement parameters %v", repl.Params)
	}
	if base, k, r := streams.ParseName(repl.Name); base != "rec-WT1" || k != 2 || r != 1 {
		t.Errorf("ParseName(%q) = %q, %d, %d; want rec-WT1, 2, 1", repl.Name, base, k, r)
	}
	if n := len(e.fake.Streams()); n != 3 {
		t.Errorf("%d streams at Twilio, want the two copies and one replacement", n)
	}
	submit(t, e.m, stopOrder("rec-WT1"))
	for k := 1; k <= 2; k++ {
		if in := e.waitIntent(t, streams.StopKey(streams.CopyName("rec-WT1", k))); in.Outcome != "stopped" {
			t.Errorf("copy %d: stop %+v", k, in)
		}
	}
	for _, s := range e.fake.Streams() {
		if s.Status != "stopped" {
			t.Errorf("%s (%s) is %s after the stop", s.Name, s.SID, s.Status)
		}
	}
	var stopped []string
	for _, r := range e.fake.Requests() {
		if r.Op == twiliotest.OpStopStream && r.Status == http.StatusOK {
			stopped = append(stopped, r.Path)
		}
	}
	if len(stopped) != 2 {
		t.Errorf("stop requests %v, want copy 1 and the replacement of copy 2", stopped)
	}
}

// TestStopFollowsWhatStarted: a stop decision stops the streams that were
// started for it, whichever mode started them (the option changed across a
// restart of the tracker).
func TestStopFollowsWhatStarted(t *testing.T) {
	store := streams.NewMemoryStore()
	e := newEnv(t, streams.Config{}, store)
	e.fake.AddCall(call)
	submit(t, e.m, startOrder("rec-single"))
	e.waitIntent(t, streams.StartKey("rec-single"))
	e.stop()
	<-e.done

	e.start(t, streams.Config{DualStreams: true, MediaURL: "wss://rec.example.com/media", BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond},
		e.rc)
	submit(t, e.m, stopOrder("rec-single"))
	if in := e.waitIntent(t, streams.StopKey("rec-single")); in.Outcome != "stopped" {
		t.Errorf("stop of the single stream started before the change: %+v", in)
	}
	if _, ok, _ := store.Get(context.Background(), streams.StopKey("rec-single-c1")); ok {
		t.Error("a stop of a copy that never existed was ordered")
	}
	// Two both_tracks copies fill the call's four forks: the single stream
	// had to go first.
	submit(t, e.m, startOrder("rec-dual"))
	for k := 1; k <= 2; k++ {
		if in := e.waitIntent(t, streams.StartKey(streams.CopyName("rec-dual", k))); in.Outcome != "started" {
			t.Fatalf("copy %d: start %+v", k, in)
		}
	}
	e.stop()
	<-e.done

	e.start(t, streams.Config{MediaURL: "wss://rec.example.com/media", BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond},
		e.rc)
	submit(t, e.m, stopOrder("rec-dual"))
	for k := 1; k <= 2; k++ {
		if in := e.waitIntent(t, streams.StopKey(streams.CopyName("rec-dual", k))); in.Outcome != "stopped" {
			t.Errorf("copy %d, started before the option was turned off: stop %+v", k, in)
		}
	}
	for _, s := range e.fake.Streams() {
		if s.Status != "stopped" {
			t.Errorf("%s is %s at the end", s.Name, s.Status)
		}
	}
}

// TestParseName: the names the Manager makes read back into the decision's
// stream; other names are their own base.
func TestParseName(t *testing.T) {
	tests := []struct {
		name          string
		base          string
		copy, restart int
	}{
		{"rec-WT1", "rec-WT1", 0, 0},
		{"rec-WT1-2", "rec-WT1-2", 0, 0},
		{"rec-WT1-c1", "rec-WT1", 1, 0},
		{"rec-WT1-2-c2", "rec-WT1-2", 2, 0},
		{"rec-WT1-restart3", "rec-WT1", 0, 3},
		{"rec-WT1-c2-restart1", "rec-WT1", 2, 1},
		{"rec-WT1-2-c1-restart20", "rec-WT1-2", 1, 20},
		{"rec-WT1-c5", "rec-WT1-c5", 0, 0},             // more copies than Twilio allows
		{"rec-WT1-c01", "rec-WT1-c01", 0, 0},           // not as made
		{"rec-WT1-restart0", "rec-WT1-restart0", 0, 0}, // not as made
		{"rec-WT1-restart", "rec-WT1-restart", 0, 0},
		{"-c1", "-c1", 0, 0},
		{"", "", 0, 0},
	}
	for _, tt := range tests {
		base, k, r := streams.ParseName(tt.name)
		if base != tt.base || k != tt.copy || r != tt.restart {
			t.Errorf("ParseName(%q) = %q, %d, %d; want %q, %d, %d", tt.name, base, k, r, tt.base, tt.copy, tt.restart)
		}
	}
	for _, base := range []string{"rec-WT1", "rec-WT1-7", "a b/c"} {
		for k := 1; k <= streams.DualCopies; k++ {
			if b, gotK, _ := streams.ParseName(streams.CopyName(base, k)); b != base || gotK != k {
				t.Errorf("ParseName(CopyName(%q, %d)) = %q, %d", base, k, b, gotK)
			}
		}
	}
}

func TestPairURL(t *testing.T) {
	for _, tt := range []struct {
		media, group string
		k            int
		want         string
	}{
		{"wss://rec.example.com/media", "rec-WT1", 1, "wss://rec.example.com/media/pair/rec-WT1/1"},
		{"wss://rec.example.com/media/", "rec-WT1-2", 2, "wss://rec.example.com/media/pair/rec-WT1-2/2"},
		{"wss://rec.example.com/media", "a b/c?d", 2, "wss://rec.example.com/media/pair/a%20b%2Fc%3Fd/2"},
		{"wss://rec.example.com/media?x=1", "rec-WT1", 1, "wss://rec.example.com/media/pair/rec-WT1/1?x=1"},
	} {
		if got := streams.PairURL(tt.media, tt.group, tt.k); got != tt.want {
			t.Errorf("PairURL(%q, %q, %d) = %q, want %q", tt.media, tt.group, tt.k, got, tt.want)
		}
	}
}

// TestRestartsBackOff: the first replacement of a dead stream goes at
// once; a stream that keeps dying is replaced after BackoffBase, then
// twice as long.
func TestRestartsBackOff(t *testing.T) {
	const base = 150 * time.Millisecond
	e := newEnv(t, streams.Config{DualStreams: true, BackoffBase: base, BackoffMax: time.Second}, nil)
	e.fake.AddCall(call)
	submit(t, e.m, startOrder("rec-WT1"))
	in := e.waitIntent(t, streams.StartKey("rec-WT1-c1"))
	name, sid := "rec-WT1-c1", in.StreamSID
	for k, want := range []time.Duration{0, base, 2 * base} {
		e.fake.StreamEnded(sid)
		if ok, err := e.m.StreamFailed(context.Background(), name, sid, "refused"); err != nil || !ok {
			t.Fatalf("restart %d: %v, %v", k+1, ok, err)
		}
		r := e.waitIntent(t, "restart:rec-WT1-c1:"+strconv.Itoa(k+1))
		if r.Outcome != "started" {
			t.Fatalf("restart %d: %+v", k+1, r)
		}
		if due, took := r.NextTry.Sub(r.Created), r.Finished.Sub(r.Created); due != want || took < want {
			t.Errorf("restart %d was due %v and went %v after the stream-error, want %v", k+1, due, took, want)
		}
		name, sid = r.Name, r.StreamSID
	}
	if got := byName(e.fake)["rec-WT1-c2"]; got.Status != "in-progress" {
		t.Errorf("copy 2 is %s while copy 1 kept dying", got.Status)
	}
}
