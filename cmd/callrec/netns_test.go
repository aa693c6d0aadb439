package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"callrec"
	"callrec/internal/callrectest"
	"callrec/recorder"
)

// The multi-host run: 102 calls (≥ 100, a multiple of 3 so the fair share
// per recorder is whole) of 25 s, long enough for the kill, the failover and
// the drain to happen while every call is live; a few more calls during
// the drain and after the restart. The calls arrive over 10 s: 10 a second,
// well above a contact centre's arrival rate (a burst of 50 a second
// herds the three adapters' placements onto one recorder; see checkSpread).
const (
	mhCalls    = 102
	mhDuration = 25 * time.Second
	mhRampUp   = 10 * time.Second
	mhFewCalls = 6
)

// Ports inside each host's namespace: every host has its own address, so
// they are fixed.
const (
	mhPoolPort  = "7946"
	mhLinkPort  = "8090"
	mhRecHTTP   = "8082"
	mhMediaPort = "8081"
	mhAdHTTP    = "8083"
	mhLBPort    = "8443"
	mhLBHTTP    = "8088"
)

// TestMultiHost runs the pooled media tier as separate hosts: each of 3
// recorders, 3 media adapters and the lb in its own network namespace, all
// joined by a bridge in a hub namespace; Twilio (`callrec simulate`) and the
// operator (`callrec pool`) run in one more. 102 concurrent signed calls go
// through the lb. While they run, recorder 1 is killed with SIGKILL and
// recorder 2 is drained (more calls are placed during the drain), then
// restarted on its data. Afterwards: every call's segments together hold
// every chunk Twilio sent (no acknowledged frame lost to the kill or the
// drain), placement spread the calls within 10 % of the fair share, the
// draining recorder took no new stream and exited 0, and the restarted one
// takes streams again.
//
// Not covered yet: the adapter kill with dual streams (a call's two
// Media Streams on different adapters, one adapter killed) is not built;
// this test leaves it out.
func TestMultiHost(t *testing.T) {
	began := time.Now()
	l := newNetLab(t)
	c := startMHCluster(t, l)
	t.Logf("7 hosts up and pooled %v after the start (subnet %s0/24)", time.Since(began).Round(time.Millisecond), l.subnet)

	mainStart := time.Now()
	mainSim := c.simulate(t, "sim-main", mhCalls, mhDuration, mhRampUp)
	on := c.awaitPlaced(t, mainSim)
	c.checkSpread(t, on)

	c.killRecorder1(t, on[0])
	drain := c.drainRecorder2(t, mainStart)
	mainSum := l.summary(t, mainSim, 60*time.Second)
	again := c.restartRecorder2(t)

	// Every stream has ended: read what each recorder holds. Recorder 1 is
	// restarted on its data outside the pool: its open recordings are
	// repaired as interrupted.
	callrectest.Eventually(t, 30*time.Second, "recorders 2 and 3 finished every recording", throttled(200*time.Millisecond, func() bool {
		return l.metric(c.recHTTP(1), "callrec_recorder_recordings_active") == 0 && l.metric(c.recHTTP(2), "callrec_recorder_recordings_active") == 0
	}))
	c.rec[0] = c.startRecorder(t, 0, false, " (read back)")
	c.rec[0].waitReady(t, 60*time.Second)
	segs := c.segmentsBySID(t)

	resumed := checkMainCalls(t, mainSum, segs)
	checkFewCalls(t, "placed during the drain", drain.calls, segs, func(on int) bool { return on == 2 })
	checkFewCalls(t, "placed after the restart", again, segs, func(on int) bool { return on != 0 })
	c.checkNoStreamWhileDraining(t, drain, segs)
	t.Logf("%d calls, %d resumed after the kill, every chunk accounted for; total %v", mhCalls, resumed, time.Since(began).Round(time.Millisecond))
}

// mhCluster is the system under test: its hosts and their addresses.
type mhCluster struct {
	*netLab
	simNS  string // Twilio's and the operator's host
	seeds  string // the recorders' gossip addresses
	public string // the lb's Media Streams URL: what Twilio dials and signs
	recNS  [3]string
	recIP  [3]string
	recDir [3]string
	rec    [3]*labProc
	recArg []string // more recorder flags
	adNS   [3]string
	adIP   [3]string
	ad     [3]*labProc
	adHTTP [3]string
	lbHTTP string
	simIP  string
}

// startMHCluster starts the lab's 7 hosts; recArgs are more recorder flags.
func startMHCluster(t *testing.T, l *netLab, recArgs ...string) *mhCluster {
	c := &mhCluster{netLab: l, recArg: recArgs}
	c.simNS, c.simIP = l.host(t, "sim", 2)
	for i := range 3 {
		c.recNS[i], c.recIP[i] = l.host(t, fmt.Sprintf("rec%d", i+1), 11+i)
		c.recDir[i] = t.TempDir()
		c.adNS[i], c.adIP[i] = l.host(t, fmt.Sprintf("ad%d", i+1), 21+i)
	}
	lbNS, lbIP := l.host(t, "lb", 31)
	t.Logf("the hub and 8 host namespaces built in %v", time.Since(l.born).Round(time.Millisecond))
	var seeds []string
	for _, ip := range c.recIP {
		seeds = append(seeds, net.JoinHostPort(ip, mhPoolPort))
	}
	c.seeds = strings.Join(seeds, ",")
	c.public = "ws://" + net.JoinHostPort(lbIP, mhLBPort) + "/media"

	// Every host starts at once (a member may start before its seeds).
	var procs []*labProc
	for i := range 3 {
		c.rec[i] = c.startRecorder(t, i, true, "")
		procs = append(procs, c.rec[i])
	}
	for i := range 3 {
		c.ad[i] = c.startAdapter(t, i, "")
		procs = append(procs, c.ad[i])
	}
	c.lbHTTP = net.JoinHostPort(lbIP, mhLBHTTP)
	procs = append(procs, l.start(t, "lb", lbNS, "lb running", "lb", "--listen-addr", net.JoinHostPort(lbIP, mhLBPort),
		"--http-addr", c.lbHTTP, "--pool-seeds", c.seeds, "--pool-bind", net.JoinHostPort(lbIP, mhPoolPort), "--pool-fast", "--pool-name", "lb"))
	for _, p := range procs {
		p.waitReady(t, 60*time.Second)
	}
	callrectest.Eventually(t, 30*time.Second, "the lb sees 3 adapters and every adapter 3 recorders", throttled(100*time.Millisecond, func() bool {
		if l.metric(c.lbHTTP, `callrec_pool_members{role="mediaadapter",state="alive"}`) != 3 {
			return false
		}
		for _, a := range c.adHTTP {
			if l.metric(a, `callrec_pool_members{role="recorder",state="alive"}`) != 3 {
				return false
			}
		}
		return true
	}))
	return c
}

func (c *mhCluster) recHTTP(i int) string { return net.JoinHostPort(c.recIP[i], mhRecHTTP) }

// startAdapter starts media adapter i+1 in the pool.
func (c *mhCluster) startAdapter(t *testing.T, i int, label string) *labProc {
	name, at := fmt.Sprintf("ad%d", i+1), func(port string) string { return net.JoinHostPort(c.adIP[i], port) }
	c.adHTTP[i] = at(mhAdHTTP)
	return c.start(t, name+label, c.adNS[i], "media adapter running", "mediaadapter", "--media-addr", at(mhMediaPort),
		"--http-addr", c.adHTTP[i], "--twilio-auth-token", testToken, "--public-url", c.public,
		"--pool-seeds", c.seeds, "--pool-bind", at(mhPoolPort), "--pool-fast", "--pool-name", name)
}

// startRecorder starts recorder i+1 on its data dir, in the pool or alone
// (to read what a dead one holds).
func (c *mhCluster) startRecorder(t *testing.T, i int, pooled bool, label string) *labProc {
	name, ip := fmt.Sprintf("rec%d", i+1), c.recIP[i]
	args := []string{"recorder", "--data-dir", c.recDir[i], "--node-id", strconv.Itoa(i + 1), "--link-addr", net.JoinHostPort(ip, mhLinkPort),
		"--http-addr", c.recHTTP(i), "--flush-interval", "100ms", "--capacity", "100"}
	if pooled {
		args = append(args, "--pool-seeds", c.seeds, "--pool-bind", net.JoinHostPort(ip, mhPoolPort), "--pool-fast", "--pool-name", name)
	}
	args = append(args, c.recArg...)
	return c.start(t, name+label, c.recNS[i], "recorder running", args...)
}

// simulate starts `callrec simulate` in Twilio's namespace, through the lb.
func (c *mhCluster) simulate(t *testing.T, name string, calls int, d, rampUp time.Duration) *labProc {
	return c.start(t, name, c.simNS, "", "simulate", "--url", c.public, "--auth-token", testToken, "--calls", strconv.Itoa(calls),
		"--duration", d.String(), "--ramp-up", rampUp.String(), "--json")
}

// adapterSum adds a metric sample over the adapters.
func (c *mhCluster) adapterSum(sample string) float64 {
	var n float64
	for _, a := range c.adHTTP {
		n += c.metric(a, sample)
	}
	return n
}

// awaitPlaced waits until every call is recording with at least 1 s of
// audio synced, and returns the recordings on each recorder.
func (c *mhCluster) awaitPlaced(t *testing.T, sim *labProc) (on [3][]*callrec.Recording) {
	callrectest.Eventually(t, 45*time.Second, "every call placed with 1 s of audio synced", throttled(250*time.Millisecond, func() bool {
		if sim.exited() {
			return true
		}
		n := 0.0
		for i := range 3 {
			n += c.metric(c.recHTTP(i), "callrec_recorder_recordings_active")
		}
		if n != mhCalls {
			return false
		}
		for i := range 3 {
			list, err := c.recordings(c.recHTTP(i))
			if err != nil {
				return false
			}
			for _, r := range list {
				if r.Audio.DataBytes < 16000 {
					return false
				}
			}
			on[i] = list
		}
		return true
	}))
	if sim.exited() {
		t.Fatalf("the simulator exited early: %v\n%s", sim.err, sim.logTail(20))
	}
	return on
}

// checkSpread checks each recorder got within 10 % of its fair share
// (calls/3, so 31..37 of 102): "spreads load within 10 % across recorders"
// read per recorder, the load an operator sizes a node for. Bounding
// max-min by 10 % of the mean (3 calls) instead would also fail a correct
// placement: three adapters place independently on gossip at least one
// interval old, so they can differ by a call or two without any fault.
func (c *mhCluster) checkSpread(t *testing.T, on [3][]*callrec.Recording) {
	fair := float64(mhCalls) / 3
	lo, hi := int(math.Ceil(fair*0.9)), int(math.Floor(fair*1.1))
	t.Logf("placement: %d / %d / %d calls on recorders 1 / 2 / 3 (fair share %.1f, allowed %d..%d); adapters accepted %v / %v / %v",
		len(on[0]), len(on[1]), len(on[2]), fair, lo, hi, c.metric(c.adHTTP[0], "callrec_media_connections_accepted_total"),
		c.metric(c.adHTTP[1], "callrec_media_connections_accepted_total"), c.metric(c.adHTTP[2], "callrec_media_connections_accepted_total"))
	for i, rs := range on {
		if len(rs) < lo || len(rs) > hi {
			t.Errorf("recorder %d has %d of %d calls, want %d..%d", i+1, len(rs), mhCalls, lo, hi)
		}
	}
}

// killRecorder1 kills recorder 1 with SIGKILL and waits until each of its
// calls continues on recorder 2 or 3.
func (c *mhCluster) killRecorder1(t *testing.T, had []*callrec.Recording) {
	first := map[callrec.INUM]bool{}
	for _, r := range had {
		first[r.INUM] = true
	}
	killed := time.Now()
	if err := c.rec[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.rec[0].waitExit(t, 10*time.Second)
	var to [3]int
	callrectest.Eventually(t, 30*time.Second, "recorder 1's calls resumed on recorders 2 and 3", throttled(250*time.Millisecond, func() bool {
		to = [3]int{}
		for i := 1; i < 3; i++ {
			list, err := c.recordings(c.recHTTP(i))
			if err != nil {
				return false
			}
			for _, r := range list {
				if first[r.PreviousINUM] {
					to[i]++
				}
			}
		}
		return to[1]+to[2] == len(had)
	}))
	t.Logf("recorder 1 killed with %d calls: all resumed within %v (%d on recorder 2, %d on 3; %v link failovers)",
		len(had), time.Since(killed).Round(time.Millisecond), to[1], to[2], c.adapterSum("callrec_failovers_total"))
}

// mhDrain is what drainRecorder2 saw.
type mhDrain struct {
	before map[callrec.INUM]bool // recorder 2's recordings when the drain was asked
	calls  *simSummary           // placed while recorder 2 was draining
}

// drainRecorder2 drains recorder 2 with `callrec pool drain --wait` while
// the main calls run, places more calls meanwhile, and waits until it has
// finished its streams and exited.
func (c *mhCluster) drainRecorder2(t *testing.T, mainStart time.Time) *mhDrain {
	list, err := c.recordings(c.recHTTP(1))
	if err != nil {
		t.Fatal(err)
	}
	d := &mhDrain{before: map[callrec.INUM]bool{}}
	for _, r := range list {
		d.before[r.INUM] = true
	}
	const placedOn2 = `callrec_placements_total{recorder="rec2"}`
	placed := c.adapterSum(placedOn2)
	asked := time.Now()
	cli := c.start(t, "pool-drain", c.simNS, "", "pool", "drain", "rec2", "--pool-seeds", c.seeds, "--pool-fast", "--pool-name", "cli-drain", "--wait", "90s")
	callrectest.Eventually(t, 30*time.Second, "recorder 2 acknowledged the drain", throttled(50*time.Millisecond, func() bool {
		return cli.exited() || strings.Contains(cli.stdout(), "rec2 is draining")
	}))
	if !strings.Contains(cli.stdout(), "rec2 is draining") {
		t.Fatalf("pool drain: %v: %s\n%s", cli.err, cli.stdout(), cli.logTail(20))
	}
	t.Logf("drain of recorder 2 (%d streams) acknowledged in %v", len(d.before), time.Since(asked).Round(time.Millisecond))

	d.calls = c.summary(t, c.simulate(t, "sim-drain", mhFewCalls, 4*time.Second, 0), 40*time.Second)
	if c.rec[1].exited() {
		t.Errorf("recorder 2 exited before the calls placed during its drain ended: they prove nothing; lengthen mhDuration")
	}
	// It leaves once the main calls end.
	c.rec[1].waitExit(t, time.Until(mainStart.Add(mhRampUp+mhDuration+45*time.Second)))
	if c.rec[1].err != nil {
		t.Errorf("drained recorder 2 exited with %v, want 0", c.rec[1].err)
	}
	t.Logf("recorder 2 drained and exited %v after the drain request", time.Since(asked).Round(time.Millisecond))
	cli.waitExit(t, 20*time.Second)
	if out := cli.stdout(); cli.err != nil || !strings.Contains(out, "has no stream left") && !strings.Contains(out, "finished its streams and left") {
		t.Errorf("pool drain --wait: %v: %s", cli.err, out)
	}
	if got := c.adapterSum(placedOn2); got != placed {
		t.Errorf("the adapters placed %v streams on recorder 2 while it drained", got-placed)
	}
	return d
}

// restartRecorder2 restarts recorder 2 on its data, checks it rejoins the
// pool, and places a few calls, some of which must land on it.
func (c *mhCluster) restartRecorder2(t *testing.T) *simSummary {
	restarted := time.Now()
	c.rec[1] = c.startRecorder(t, 1, true, " (restarted)")
	c.rec[1].waitReady(t, 60*time.Second)
	callrectest.Eventually(t, 30*time.Second, "every adapter sees recorders 2 and 3 alive", throttled(100*time.Millisecond, func() bool {
		for _, a := range c.adHTTP {
			if c.metric(a, `callrec_pool_members{role="recorder",state="alive"}`) != 2 {
				return false
			}
		}
		return true
	}))
	t.Logf("recorder 2 restarted and rejoined in %v", time.Since(restarted).Round(time.Millisecond))
	st := c.start(t, "pool-status", c.simNS, "", "pool", "status", "--pool-seeds", c.seeds, "--pool-fast", "--pool-name", "cli-status")
	st.waitExit(t, 30*time.Second)
	var row string
	sc := bufio.NewScanner(strings.NewReader(st.stdout()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "rec2 ") {
			row = sc.Text()
		}
	}
	if f := strings.Fields(row); st.err != nil || len(f) < 3 || f[2] != "alive" || strings.Contains(row, "true") {
		t.Errorf("pool status after the restart: %v; recorder 2's row %q, want alive and not draining:\n%s", st.err, row, st.stdout())
	}
	const placedOn2 = `callrec_placements_total{recorder="rec2"}`
	placed := c.adapterSum(placedOn2)
	sum := c.summary(t, c.simulate(t, "sim-again", mhFewCalls, 3*time.Second, 0), 40*time.Second)
	n := c.adapterSum(placedOn2) - placed
	t.Logf("after its restart recorder 2 took %v of %d new calls", n, mhFewCalls)
	if n < 1 {
		t.Errorf("the restarted recorder 2 took none of %d new calls", mhFewCalls)
	}
	return sum
}

// mhSegment is a recording and the recorder (0..2) holding it.
type mhSegment struct {
	on int
	r  *callrec.Recording
}

// segmentsBySID lists every recording of every recorder by stream SID.
func (c *mhCluster) segmentsBySID(t *testing.T) map[string][]mhSegment {
	segs := map[string][]mhSegment{}
	for i := range 3 {
		list, err := c.recordings(c.recHTTP(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			segs[r.Stream.StreamSID] = append(segs[r.Stream.StreamSID], mhSegment{i, r})
		}
	}
	return segs
}

// checkMainCalls checks every main call: Twilio saw no error and sent stop,
// and the call is one complete recording on recorder 2 or 3, or, if it was
// on recorder 1, that segment (chunks 1..n) and its continuation (from ≤ n+1
// to the last chunk, none missing). It returns how many resumed.
func checkMainCalls(t *testing.T, sum *simSummary, segs map[string][]mhSegment) (resumed int) {
	for _, call := range sum.Calls {
		if !call.ok() {
			t.Errorf("call %d: error %s (stop sent %v): a recorder failure or drain must not reach Twilio's socket", call.Index, call.Err, call.StopSent)
			continue
		}
		ss := segs[call.StreamSID]
		switch {
		case len(ss) == 1:
			checkWhole(t, fmt.Sprintf("call %d", call.Index), call, ss[0])
			if ss[0].on == 0 {
				t.Errorf("call %d: complete on the killed recorder 1", call.Index)
			}
		case len(ss) == 2:
			resumed++
			if ss[0].r.PreviousINUM != "" {
				ss[0], ss[1] = ss[1], ss[0]
			}
			a, b := ss[0], ss[1]
			if a.on != 0 || a.r.State != callrec.StateInterrupted || b.on == 0 || b.r.State != callrec.StateComplete || b.r.PreviousINUM != a.r.INUM {
				t.Errorf("call %d: %s on recorder %d (%s), then %s on recorder %d (%s, continuing %q); want interrupted on 1, then complete on 2 or 3 continuing it",
					call.Index, a.r.INUM, a.on+1, a.r.State, b.r.INUM, b.on+1, b.r.State, b.r.PreviousINUM)
				continue
			}
			n := uint32(a.r.Audio.DataBytes / 2 / 160)
			if len(b.r.Accounting.Tracks) != callrec.NumTracks {
				t.Errorf("call %d: continuation %s accounts for %d tracks", call.Index, b.r.INUM, len(b.r.Accounting.Tracks))
			}
			for i, ta := range b.r.Accounting.Tracks {
				if ta.FirstChunk > n+1 || ta.Missing != 0 || ta.LastChunk != uint32(call.Tracks[i].Frames) {
					t.Errorf("call %d %s: recorder 1 holds chunks 1..%d, recorder %d %d..%d with %d missing, %d sent: chunks lost",
						call.Index, ta.Track, n, b.on+1, ta.FirstChunk, ta.LastChunk, ta.Missing, call.Tracks[i].Frames)
				}
			}
		default:
			t.Errorf("call %d: %d segments, want 1, or 2 if it was on recorder 1", call.Index, len(ss))
		}
	}
	return resumed
}

// checkFewCalls checks calls that should each be one complete recording
// on a recorder where(on) allows.
func checkFewCalls(t *testing.T, what string, sum *simSummary, segs map[string][]mhSegment, where func(on int) bool) {
	for _, call := range sum.Calls {
		name := fmt.Sprintf("call %d %s", call.Index, what)
		ss := segs[call.StreamSID]
		switch {
		case !call.ok():
			t.Errorf("%s: error %s (stop sent %v)", name, call.Err, call.StopSent)
		case len(ss) != 1:
			t.Errorf("%s: %d segments, want 1", name, len(ss))
		case !where(ss[0].on):
			t.Errorf("%s: on recorder %d", name, ss[0].on+1)
		default:
			checkWhole(t, name, call, ss[0])
		}
	}
}

// checkWhole checks a call recorded whole in one segment.
func checkWhole(t *testing.T, name string, call simCall, s mhSegment) {
	t.Helper()
	if s.r.State != callrec.StateComplete || s.r.PreviousINUM != "" {
		t.Errorf("%s: %s on recorder %d is %s (continuing %q), want complete", name, s.r.INUM, s.on+1, s.r.State, s.r.PreviousINUM)
	}
	if len(s.r.Accounting.Tracks) != callrec.NumTracks {
		t.Errorf("%s: %s accounts for %d tracks", name, s.r.INUM, len(s.r.Accounting.Tracks))
	}
	for i, ta := range s.r.Accounting.Tracks {
		if ta.FirstChunk != 1 || ta.Missing != 0 || ta.LastChunk != uint32(call.Tracks[i].Frames) {
			t.Errorf("%s %s: chunks %d..%d with %d missing, %d sent", name, ta.Track, ta.FirstChunk, ta.LastChunk, ta.Missing, call.Tracks[i].Frames)
		}
	}
}

// checkNoStreamWhileDraining checks recorder 2 holds nothing that started
// after the drain was asked but before it restarted: only what it had.
func (c *mhCluster) checkNoStreamWhileDraining(t *testing.T, d *mhDrain, segs map[string][]mhSegment) {
	since := c.rec[1].started // the restart: recordings after it are fine
	for _, ss := range segs {
		for _, s := range ss {
			if s.on == 1 && !d.before[s.r.INUM] && s.r.StartedAt.Before(since) {
				t.Errorf("recorder 2 got stream %s (%s) at %v while draining", s.r.Stream.StreamSID, s.r.INUM, s.r.StartedAt)
			}
		}
	}
}

// simSummary is `callrec simulate --json` output (simulate.Summary, whose
// Err does not decode into an error).
type simSummary struct {
	Calls  []simCall
	Failed int
}

type simCall struct {
	Index     int
	StreamSID string
	Tracks    [callrec.NumTracks]struct{ Frames int64 }
	StopSent  bool
	Err       json.RawMessage
}

func (c simCall) ok() bool { return c.StopSent && (len(c.Err) == 0 || string(c.Err) == "null") }

// netLab is a private network of namespaces: a hub namespace holding the
// bridge br0, and one namespace per host with a veth into the bridge. None
// of it touches the host's own network, so the subnet cannot clash with it;
// it is still random per run, as are the names, so runs cannot collide.
type netLab struct {
	t      *testing.T
	prefix string // of every namespace: mhns-<pid>-<random>-
	subnet string // "10.a.b."
	hubNS  string
	born   time.Time
	hub    *os.File     // the hub namespace, for the test's own probes
	client *http.Client // dials from the hub

	mu    sync.Mutex
	nss   []string // created, hub first
	procs []*labProc
}

// mhNSName matches this test's namespaces; the number is the test
// process's pid.
var mhNSName = regexp.MustCompile(`^mhns-(\d+)-[0-9a-f]{4}-`)

func newNetLab(t *testing.T) *netLab {
	if testing.Short() {
		t.Skip("builds network namespaces and starts child processes")
	}
	unable := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("the multi-host test must run in CI: %s", why)
		}
		t.Skipf("SKIPPED the multi-host test: %s (it needs root and iproute2 for network namespaces)", why)
	}
	if os.Geteuid() != 0 {
		unable("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unable("no ip command")
	}
	l := &netLab{t: t, born: time.Now(), prefix: fmt.Sprintf("mhns-%d-%04x-", os.Getpid(), rand.IntN(1<<16)),
		subnet: fmt.Sprintf("10.%d.%d.", 1+rand.IntN(254), 1+rand.IntN(254))}
	l.removeStale()
	t.Cleanup(l.close)
	l.hubNS = l.prefix + "hub"
	if err := ipCmd("netns", "add", l.hubNS); err != nil {
		unable(err.Error())
	}
	l.nss = append(l.nss, l.hubNS)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "br0", "up"},
		{"addr", "add", l.subnet + "1/24", "dev", "br0"},
	} {
		if err := ipCmd(append([]string{"-n", l.hubNS}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if l.hub, err = os.Open("/run/netns/" + l.hubNS); err != nil {
		t.Fatal(err)
	}
	// The test reads the hosts' APIs from the hub (its bridge has .1), with
	// sockets made inside it: simpler than a veth and routes in the host's
	// namespace, and the host's network stays untouched.
	l.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: nsDialer(l.hub)}}
	return l
}

// removeStale deletes namespaces of this test left by runs whose process
// is gone (killed before its cleanup ran); a live run's are its own.
func (l *netLab) removeStale() {
	for _, ns := range netnsList(l.t) {
		m := mhNSName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if err := ipCmd("netns", "del", ns); err != nil {
			l.t.Errorf("remove stale namespace: %v", err)
		} else {
			l.t.Logf("removed namespace %s left by an earlier run", ns)
		}
	}
}

// host adds a namespace named for the host, with a veth into the hub's
// bridge and address subnet.octet.
func (l *netLab) host(t *testing.T, name string, octet int) (ns, ip string) {
	t.Helper()
	ns, ip = l.prefix+name, l.subnet+strconv.Itoa(octet)
	if err := ipCmd("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	veth := "v-" + name // in the hub's namespace only
	for _, args := range [][]string{
		{"-n", l.hubNS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", l.hubNS, "link", "set", veth, "master", "br0", "up"},
		{"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return ns, ip
}

// close kills every child, then deletes every namespace (and with them
// their links and the bridge), and checks none is left.
func (l *netLab) close() {
	l.mu.Lock()
	procs, nss := slices.Clone(l.procs), slices.Clone(l.nss)
	l.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			l.t.Errorf("%s still running 10s after SIGKILL", p.name)
		}
	}
	if l.t.Failed() {
		for _, p := range procs {
			l.t.Logf("--- %s (exit: %v), last log lines:\n%s", p.name, p.err, p.logTail(15))
		}
	}
	if l.client != nil {
		l.client.CloseIdleConnections()
	}
	if l.hub != nil {
		l.hub.Close()
	}
	for _, ns := range slices.Backward(nss) {
		if err := ipCmd("netns", "del", ns); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
	for _, ns := range netnsList(l.t) {
		if strings.HasPrefix(ns, l.prefix) {
			l.t.Errorf("namespace %s left after cleanup", ns)
		}
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// netnsList lists the named network namespaces.
func netnsList(t *testing.T) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Errorf("ip netns list: %v", err)
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0]) // "name (id: 3)"
		}
	}
	return names
}

// nsDialer dials from inside the network namespace ns. Go makes a socket on
// the calling OS thread, and a socket stays in the namespace it was made
// in: each dial locks a fresh goroutine to its thread, switches the thread
// into ns, dials and switches back. If switching back fails, the goroutine
// ends locked and Go discards the thread.
func nsDialer(ns *os.File) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			self, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: err}
				return
			}
			defer self.Close()
			if err := setns(ns); err != nil {
				runtime.UnlockOSThread()
				ch <- result{err: err}
				return
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if setns(self) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{conn, err}
		}()
		r := <-ch
		return r.conn, r.err
	}
}

func setns(f *os.File) error {
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", f.Name(), err)
	}
	return nil
}

// metric reads one sample of a host's Prometheus metrics: 0 if absent, -1
// if unreachable.
func (l *netLab) metric(httpAddr, sample string) float64 {
	resp, err := l.client.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// recordings lists every recording of a recorder.
func (l *netLab) recordings(httpAddr string) ([]*callrec.Recording, error) {
	resp, err := l.client.Get("http://" + httpAddr + "/api/recordings?limit=1000")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list recorder.ListResponse
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("recordings of %s: HTTP %d", httpAddr, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("recordings of %s: %w", httpAddr, err)
	}
	if list.Total != len(list.Recordings) {
		return nil, fmt.Errorf("recordings of %s: %d of %d listed", httpAddr, len(list.Recordings), list.Total)
	}
	return list.Recordings, nil
}

// labProc is a callrec command run as a child in a namespace.
type labProc struct {
	name    string
	cmd     *exec.Cmd
	ready   string // msg of the JSON log line saying it is ready ("": none)
	started time.Time
	done    chan struct{} // closed once it exited
	err     error         // its exit status, once done

	mu     sync.Mutex
	fields map[string]any // of the ready line
	tail   []string       // last log lines
	out    []string       // standard output
}

// start runs this test binary as `callrec args… --log-format json` inside
// namespace ns. The child dies with the test process (Pdeathsig) even if
// the cleanup never runs.
func (l *netLab) start(t *testing.T, name, ns, ready string, args ...string) *labProc {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"netns", "exec", ns, bin}, append(args, "--log-format", "json")...)
	p := &labProc{name: name, ready: ready, done: make(chan struct{}), cmd: exec.Command("ip", args...), started: time.Now()}
	p.cmd.Env = append(os.Environ(), "CALLREC_TEST_AS_MAIN=1")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stdout = &lineWriter{line: func(s string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.out = append(p.out, s)
	}}
	p.cmd.Stderr = &lineWriter{line: p.logLine}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *labProc) logLine(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line map[string]any
	if p.fields == nil && p.ready != "" && strings.Contains(s, p.ready) && json.Unmarshal([]byte(s), &line) == nil && line["msg"] == p.ready {
		p.fields = line
	}
	p.tail = append(p.tail, s)
	if len(p.tail) > 100 {
		p.tail = slices.Clone(p.tail[50:])
	}
}

// stdout is what the process printed so far, in whole lines.
func (p *labProc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

func (p *labProc) logTail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail[max(0, len(p.tail)-n):], "\n")
}

func (p *labProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits for the ready log line.
func (p *labProc) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	isReady := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.fields != nil
	}
	callrectest.Eventually(t, timeout, p.name+" ready", func() bool { return isReady() || p.exited() })
	if !isReady() {
		t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.logTail(20))
	}
}

// waitExit waits until the process has exited.
func (p *labProc) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v\n%s", p.name, timeout, p.logTail(20))
	}
}

// summary waits for a simulator and decodes its JSON summary.
func (l *netLab) summary(t *testing.T, p *labProc, timeout time.Duration) *simSummary {
	t.Helper()
	p.waitExit(t, timeout)
	var sum simSummary
	if err := json.Unmarshal([]byte(p.stdout()), &sum); err != nil {
		t.Fatalf("%s: %v (exit %v): %s\n%s", p.name, err, p.err, p.stdout(), p.logTail(20))
	}
	if sum.Failed > 0 {
		t.Logf("%s: %d calls failed; its log:\n%s", p.name, sum.Failed, p.logTail(20))
	}
	return &sum
}

// throttled runs cond at most once per d, so polling every 10 ms does not
// load busy hosts with requests; in between it reports false.
func throttled(d time.Duration, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < d {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// lineWriter calls line for each line written.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}
