package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/recorder"
	"callrec/simulate"
)

// The adapter-kill run: Flex calls through the whole CTI path (the
// simulator's events → event adapter → tracker → Start Stream on the
// simulator's Twilio API → Media Streams through the lb), long enough that
// an adapter dies while every call is live.
const (
	akCalls     = 12
	akTalk      = 25 * time.Second
	akCTIHTTP   = "8084" // tracker: events API, stream status callbacks
	akEventHTTP = "8085" // event adapter: the Event Streams webhook
	akTwilioAPI = "8089" // the simulator's Twilio REST API
)

// TestMultiHostAdapterKill kills media adapters with SIGKILL under Flex
// calls, on the multi-host lab of TestMultiHost plus a CTI host (tracker
// and event adapter) — a test of its own because an adapter's death cuts
// Twilio's sockets, which only the tracker (not bare streams) repairs.
//
// Dual streams: the tracker starts two Media Streams per call, the lb puts
// them on two different adapters, both reach the recorder the pair ranks
// first, which merges them. Adapter 1 is killed: every call keeps all its
// audio — its recording is byte for byte the call's audio from the first
// frame any copy brought to the last, with no chunk missing; the copy on
// the dead adapter ends lost, and its replacement (the tracker restarts it
// when Twilio reports stream-error) joins the same recording.
//
// Single streams: the tracker is restarted without dual streams; adapter 2
// is killed. A call it carried has two recordings: the first holds exactly
// the call's audio up to the kill, the replacement exactly the audio from
// its start; the audio in between is the gap, reported per call in frames
// and milliseconds, and nothing else is missing.
func TestMultiHostAdapterKill(t *testing.T) {
	began := time.Now()
	l := newNetLab(t)
	c := startMHCluster(t, l, "--resume-grace", "5s")
	ctiNS, ctiIP := l.host(t, "cti", 41)
	simIP := c.simIP
	ev := l.start(t, "events", ctiNS, "event adapter running", "eventadapter", "--data-dir", t.TempDir(),
		"--http-addr", net.JoinHostPort(ctiIP, akEventHTTP), "--twilio-auth-token", testToken,
		"--tracker-url", "http://"+net.JoinHostPort(ctiIP, akCTIHTTP))
	trackerDir := t.TempDir()
	startTracker := func(label string, extra ...string) *labProc {
		args := append([]string{"tracker", "--data-dir", trackerDir, "--http-addr", net.JoinHostPort(ctiIP, akCTIHTTP),
			"--twilio-auth-token", testToken, "--twilio-account-sid", fixtureAccount,
			"--twilio-api-url", "http://" + net.JoinHostPort(simIP, akTwilioAPI), "--media-url", c.public}, extra...)
		p := l.start(t, "tracker"+label, ctiNS, "tracker running", args...)
		p.waitReady(t, 60*time.Second)
		return p
	}
	tr := startTracker(" (dual streams)", "--dual-streams")
	ev.waitReady(t, 60*time.Second)
	t.Logf("lab and CTI host up in %v", time.Since(began).Round(time.Millisecond))
	events := "http://" + net.JoinHostPort(ctiIP, akEventHTTP) + "/twilio/events"

	// Dual streams, adapter 1 killed.
	sim := c.scenarios(t, "sim-dual", events, simIP)
	c.awaitPairs(t, akCalls)
	c.killAdapter(t, 0)
	dual := c.scenarioSummary(t, sim)
	c.awaitIdle(t)
	c.checkDual(t, dual)

	// Single streams, adapter 1 back, adapter 2 killed.
	if err := tr.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tr.waitExit(t, 30*time.Second)
	startTracker(" (single streams)")
	c.restartAdapter(t, 0)
	sim = c.scenarios(t, "sim-single", events, simIP)
	c.awaitStreams(t, akCalls)
	c.killAdapter(t, 1)
	single := c.scenarioSummary(t, sim)
	c.awaitIdle(t)
	c.checkSingle(t, single)
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// scenarioRun is `callrec simulate --scenario … --json` output.
type scenarioRun struct {
	Runs []struct {
		Scenario, TaskSID, CallSID                   string
		Starts, Stops, WantStarts, WantStops, Copies int
		OK                                           bool
		Error                                        string
	}
	Streams []scenarioStream
}

// scenarioStream is one Media Stream the simulated Twilio opened.
type scenarioStream struct {
	CallSID, StreamSID string
	Tracks             [callrec.NumTracks]struct{ Frames int64 }
	StopSent, Cut      bool
	Err                string
	CallFrame          int
	LoopFrame          int
}

func (s scenarioStream) failed() bool { return s.Err != "" || s.Cut }

// scenarios plays akCalls answered Flex calls at once.
func (c *mhCluster) scenarios(t *testing.T, name, events, simIP string) *labProc {
	return c.start(t, name, c.simNS, "", "simulate", "--scenario", "answered", "--repeat", strconv.Itoa(akCalls),
		"--concurrency", strconv.Itoa(akCalls), "--talk", akTalk.String(), "--events-url", events,
		"--api-addr", net.JoinHostPort(simIP, akTwilioAPI), "--auth-token", testToken, "--account-sid", fixtureAccount, "--json")
}

func (c *mhCluster) scenarioSummary(t *testing.T, p *labProc) *scenarioRun {
	t.Helper()
	p.waitExit(t, akTalk+90*time.Second)
	var run scenarioRun
	if err := json.Unmarshal([]byte(p.stdout()), &run); err != nil {
		t.Fatalf("%s: %v (exit %v): %s\n%s", p.name, err, p.err, p.stdout(), p.logTail(30))
	}
	// Each stream Twilio reported dead (stream-error) was replaced once by
	// the tracker: the Start Stream requests are those of a correct
	// recorder plus one per dead stream; every live stream was stopped.
	failed := map[string]int{}
	started := map[string]int{}
	for _, s := range run.Streams {
		started[s.CallSID]++
		if s.failed() {
			failed[s.CallSID]++
		}
	}
	for _, r := range run.Runs {
		if r.Starts != r.WantStarts+failed[r.CallSID] || r.Starts != started[r.CallSID] || r.Stops != r.WantStops {
			t.Errorf("%s: call %s: Start Stream %d (want %d + %d replacements; %d streams opened), Stop Stream %d (want %d); %s",
				p.name, r.CallSID, r.Starts, r.WantStarts, failed[r.CallSID], started[r.CallSID], r.Stops, r.WantStops, r.Error)
		}
	}
	if len(run.Runs) != akCalls {
		t.Fatalf("%s: %d scenario runs, want %d", p.name, len(run.Runs), akCalls)
	}
	return &run
}

// active lists the recordings being written on the live recorders.
func (c *mhCluster) active() ([]*callrec.Recording, bool) {
	var out []*callrec.Recording
	for i := range 3 {
		list, err := c.recordings(c.recHTTP(i))
		if err != nil {
			return nil, false
		}
		for _, r := range list {
			if r.State == callrec.StateRecording {
				out = append(out, r)
			}
		}
	}
	return out, true
}

// awaitPairs waits until n merged recordings are being written, each with
// both copies aligned and a second of audio synced.
func (c *mhCluster) awaitPairs(t *testing.T, n int) {
	callrectest.Eventually(t, 60*time.Second, fmt.Sprintf("%d merged recordings with both copies", n), throttled(250*time.Millisecond, func() bool {
		list, ok := c.active()
		if !ok || len(list) != n {
			return false
		}
		for _, r := range list {
			if r.Stream.Pair == nil || len(r.Accounting.Copies) != 2 || r.Audio.DataBytes < 16000 {
				return false
			}
			for _, cp := range r.Accounting.Copies {
				if cp.Alignment == "" {
					return false
				}
			}
		}
		return true
	}))
}

// awaitStreams waits until n single-stream recordings have a second of audio.
func (c *mhCluster) awaitStreams(t *testing.T, n int) {
	callrectest.Eventually(t, 60*time.Second, fmt.Sprintf("%d recordings with a second of audio", n), throttled(250*time.Millisecond, func() bool {
		list, ok := c.active()
		if !ok || len(list) != n {
			return false
		}
		for _, r := range list {
			if r.Audio.DataBytes < 16000 {
				return false
			}
		}
		return true
	}))
}

// awaitIdle waits until no recorder writes a recording.
func (c *mhCluster) awaitIdle(t *testing.T) {
	callrectest.Eventually(t, 60*time.Second, "every recording finished", throttled(250*time.Millisecond, func() bool {
		list, ok := c.active()
		return ok && len(list) == 0
	}))
}

// killAdapter kills adapter i with SIGKILL and waits until it is gone.
func (c *mhCluster) killAdapter(t *testing.T, i int) {
	t.Helper()
	killed := time.Now()
	if err := c.ad[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.ad[i].waitExit(t, 10*time.Second)
	callrectest.Eventually(t, 30*time.Second, "the lb sees the adapter gone", throttled(100*time.Millisecond, func() bool {
		return c.metric(c.lbHTTP, `callrec_pool_members{role="mediaadapter",state="alive"}`) == 2
	}))
	t.Logf("adapter %d killed; the lb saw it gone after %v", i+1, time.Since(killed).Round(time.Millisecond))
}

// restartAdapter starts adapter i again and waits until the lb uses it.
func (c *mhCluster) restartAdapter(t *testing.T, i int) {
	t.Helper()
	c.ad[i] = c.startAdapter(t, i, " (restarted)")
	c.ad[i].waitReady(t, 60*time.Second)
	callrectest.Eventually(t, 30*time.Second, "the lb sees 3 adapters", throttled(100*time.Millisecond, func() bool {
		return c.metric(c.lbHTTP, `callrec_pool_members{role="mediaadapter",state="alive"}`) == 3 &&
			c.metric(c.adHTTP[i], `callrec_pool_members{role="recorder",state="alive"}`) == 3
	}))
}

// recordingsByCall lists every recording of every recorder by call SID,
// with its recorder.
func (c *mhCluster) recordingsByCall(t *testing.T) map[string][]mhSegment {
	t.Helper()
	out := map[string][]mhSegment{}
	for i := range 3 {
		list, err := c.recordings(c.recHTTP(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			out[r.Stream.CallSID] = append(out[r.Stream.CallSID], mhSegment{i, r})
		}
	}
	return out
}

// audio fetches a recording's WAV data (after the header) and
// splits it into its two channels.
func (c *mhCluster) audio(t *testing.T, s mhSegment) [callrec.NumTracks][]byte {
	t.Helper()
	resp, err := c.client.Get("http://" + c.recHTTP(s.on) + "/api/recordings/" + string(s.r.INUM) + "/audio")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(b) < recorder.HeaderSize {
		t.Fatalf("audio of %s: HTTP %d, %d bytes, %v", s.r.INUM, resp.StatusCode, len(b), err)
	}
	var ch [callrec.NumTracks][]byte
	for i, v := range b[recorder.HeaderSize:] {
		ch[i%2] = append(ch[i%2], v)
	}
	return ch
}

// streamsByCall groups the simulator's streams by call, in start order.
func streamsByCall(run *scenarioRun) map[string][]scenarioStream {
	out := map[string][]scenarioStream{}
	for _, s := range run.Streams {
		out[s.CallSID] = append(out[s.CallSID], s)
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b scenarioStream) int { return a.CallFrame - b.CallFrame })
	}
	return out
}

// callAudio is the call's audio of frames [from, to) on track tr, from
// any of its streams (they carry the same loop, offset by their CallFrame).
func callAudio(s scenarioStream, tr callrec.Track, from, to int) []byte {
	return simulate.LoopAudio(tr, s.LoopFrame-s.CallFrame+from, to-from)
}

// checkDual checks every call of the dual-stream run kept all its audio.
func (c *mhCluster) checkDual(t *testing.T, run *scenarioRun) {
	byCall := c.recordingsByCall(t)
	streams := streamsByCall(run)
	lost, restarted := 0, 0
	for _, r := range run.Runs {
		name := "call " + r.CallSID
		segs, ss := byCall[r.CallSID], streams[r.CallSID]
		if len(segs) != 1 {
			t.Errorf("%s: %d recordings, want one merged recording", name, len(segs))
			continue
		}
		rec := segs[0].r
		if rec.State != callrec.StateComplete || rec.Stream.Pair == nil {
			t.Errorf("%s: %s is %s (%s %s), pair %v; want a complete merged recording", name, rec.INUM, rec.State, rec.EndReason, rec.EndDetail, rec.Stream.Pair)
		}
		// The recording covers from the first frame any copy brought to
		// the last: call frames [first, last].
		first, last := -1, 0
		for _, s := range ss {
			if s.Tracks[0].Frames == 0 {
				continue
			}
			if first < 0 || s.CallFrame < first {
				first = s.CallFrame
			}
			last = max(last, s.CallFrame+int(s.Tracks[0].Frames))
		}
		for _, ta := range rec.Accounting.Tracks {
			if ta.Missing != 0 || len(ta.Gaps) != 0 {
				t.Errorf("%s %s: %d missing, gaps %v: audio lost", name, ta.Track, ta.Missing, ta.Gaps)
			}
		}
		ch := c.audio(t, segs[0])
		for tr := range callrec.NumTracks {
			want := callAudio(ss[0], callrec.Track(tr), first, last)
			if !bytes.Equal(ch[tr], want) {
				t.Errorf("%s track %d: %d bytes, not the call's audio of frames %d..%d (%d bytes)", name, tr, len(ch[tr]), first, last, len(want))
			}
		}
		for _, cp := range rec.Accounting.Copies {
			switch cp.EndReason {
			case callrec.EndLinkLost:
				lost++
			case callrec.EndStop:
			default:
				t.Errorf("%s: copy %d (%s) ended %q", name, cp.Copy, cp.StreamSID, cp.EndReason)
			}
		}
		restarted += len(rec.Accounting.Copies) - 2
		t.Logf("%s: %s on recorder %d, %d copies %v, frames %d..%d whole", name, rec.INUM, segs[0].on+1, len(rec.Accounting.Copies), copySummary(rec), first, last)
	}
	t.Logf("dual streams: %d calls whole after adapter 1's kill; %d copies lost with it, %d replacements joined their recording", len(run.Runs), lost, restarted)
	if lost == 0 {
		t.Errorf("no copy was on the killed adapter: the kill proved nothing")
	}
}

func copySummary(r *callrec.Recording) []string {
	var out []string
	for _, cp := range r.Accounting.Copies {
		out = append(out, fmt.Sprintf("%d@%s:%s/%s+%dms supplied %d", cp.Copy, cp.Adapter, cp.EndReason, cp.Alignment, cp.OffsetMS, cp.Supplied))
	}
	return out
}

// checkSingle checks the single-stream run: a call on the killed adapter
// has its audio up to the kill and from the replacement's start, exactly;
// the frames in between are its reported gap.
func (c *mhCluster) checkSingle(t *testing.T, run *scenarioRun) {
	byCall := c.recordingsByCall(t)
	streams := streamsByCall(run)
	hit := 0
	for _, r := range run.Runs {
		name := "call " + r.CallSID
		segs, ss := byCall[r.CallSID], streams[r.CallSID]
		slices.SortFunc(segs, func(a, b mhSegment) int { return a.r.StartedAt.Compare(b.r.StartedAt) })
		if len(segs) != len(ss) || len(segs) == 0 || len(segs) > 2 {
			t.Errorf("%s: %d recordings of %d streams; want 1, or 2 if its adapter was killed", name, len(segs), len(ss))
			continue
		}
		bySID := map[string]scenarioStream{}
		for _, s := range ss {
			bySID[s.StreamSID] = s
		}
		if len(segs) == 1 {
			s := bySID[segs[0].r.Stream.StreamSID]
			if segs[0].r.State != callrec.StateComplete || s.failed() {
				t.Errorf("%s: %s %s, stream error %s; want complete", name, segs[0].r.INUM, segs[0].r.State, s.Err)
			}
			c.checkSpan(t, name, segs[0], s, int(s.Tracks[0].Frames))
			continue
		}
		hit++
		a, b := segs[0], segs[1]
		sa, sb := bySID[a.r.Stream.StreamSID], bySID[b.r.Stream.StreamSID]
		if a.r.State != callrec.StateInterrupted || b.r.State != callrec.StateComplete || b.r.Stream.CustomParameters["restart_of"] != sa.StreamSID {
			t.Errorf("%s: %s (%s) then %s (%s, restart_of %q); want interrupted, then its complete replacement",
				name, a.r.INUM, a.r.State, b.r.INUM, b.r.State, b.r.Stream.CustomParameters["restart_of"])
			continue
		}
		// The first recording holds chunks 1..n of its stream: call frames
		// [sa.CallFrame, sa.CallFrame+n); the replacement all of its own.
		n := c.checkSpan(t, name+" (before the kill)", a, sa, -1)
		c.checkSpan(t, name+" (replacement)", b, sb, int(sb.Tracks[0].Frames))
		gap := sb.CallFrame - (sa.CallFrame + n)
		if gap < 0 {
			t.Errorf("%s: the replacement starts %d frames before the first recording ends", name, -gap)
		}
		t.Logf("%s: adapter killed after %d frames on %s; replacement %s from call frame %d: gap %d frames (%v) until the tracker restarted the stream",
			name, n, a.r.INUM, b.r.INUM, sb.CallFrame, gap, time.Duration(gap)*simulate.FrameDuration)
	}
	t.Logf("single streams: %d of %d calls were on the killed adapter", hit, len(run.Runs))
	if hit == 0 {
		t.Errorf("no call was on the killed adapter: the kill proved nothing")
	}
}

// checkSpan checks a recording holds exactly chunks 1..to of its stream on
// each track, none missing, and their audio; to < 0: up to the chunk each
// track reached (a stream cut mid-call: one track may be a frame behind
// the other, which the file pads with silence). It returns the chunks of
// the longer track.
func (c *mhCluster) checkSpan(t *testing.T, name string, seg mhSegment, s scenarioStream, to int) int {
	t.Helper()
	ch := c.audio(t, seg)
	n := 0
	for i, ta := range seg.r.Accounting.Tracks {
		last := int(ta.LastChunk)
		if ta.Missing != 0 || ta.FirstChunk != 1 || (to >= 0 && last != to) {
			t.Errorf("%s %s: chunks %d..%d, %d missing; want 1..%d", name, ta.Track, ta.FirstChunk, ta.LastChunk, ta.Missing, max(to, last))
		}
		n = max(n, last)
		tr, _ := callrec.ParseTrack(ta.Track)
		if i != int(tr) {
			t.Fatalf("%s: track %d is %s", name, i, ta.Track)
		}
		want := simulate.LoopAudio(tr, s.LoopFrame, last)
		got := ch[tr]
		if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) || bytes.Count(got[len(want):], []byte{callrec.MulawSilence}) != len(got)-len(want) {
			t.Errorf("%s %s: %d bytes, not the stream's chunks 1..%d (%d bytes) then silence", name, ta.Track, len(got), last, len(want))
		}
	}
	return n
}
