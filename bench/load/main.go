// Command load measures callrec under load.
//
// With -topology run (the default) it compares `callrec run` with the
// transport floor: a bare gorilla/websocket server that reads and discards
// messages. With -topology pool it runs the media tier as it is deployed:
// recorders and media adapters as separate processes joined in a pool
// (memberlist on loopback), behind `callrec lb` (see pool.go).
//
// Servers are child processes; the simulator runs in this process (real
// time, signed, two tracks). It reports server CPU-seconds per call-minute
// (from /proc/<pid>/stat, summed over every server process), resident
// memory per call, and whether every frame was recorded. With -max it then
// raises the number of concurrent calls until a frame is lost or the
// machine falls behind, and reports the largest count it sustained.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"callrec"
	"callrec/simulate"
)

const token = "12345678901234567890123456789012"

func main() {
	serveFloor := flag.String("serve-floor", "", "internal: run the floor server on this address")
	calls := flag.Int("calls", 200, "concurrent two-track calls (pool: 0 skips this run, for -max alone)")
	duration := flag.Duration("duration", 60*time.Second, "audio per call")
	bin := flag.String("bin", "bin/callrec", "callrec binary")
	maxSearch := flag.String("max", "", "comma-separated call counts to try for the largest sustained load, e.g. 400,800,1200")
	maxDuration := flag.Duration("max-duration", 30*time.Second, "audio per call in the -max search")
	topology := flag.String("topology", "run", "run: `callrec run` beside the bare WebSocket floor; pool: recorders and media adapters as processes joined in a pool, behind `callrec lb`")
	var pc poolConfig
	flag.IntVar(&pc.Adapters, "adapters", 2, "pool: media adapter processes")
	flag.IntVar(&pc.Recorders, "recorders", 2, "pool: recorder processes")
	flag.BoolVar(&pc.Dual, "dual-recording", false, "pool: the adapters write every call to two recorders; each call must be recorded twice, on two different recorders")
	keep := flag.Bool("keep", false, "keep the data directory (recordings, the processes' logs) and print where it is")
	flag.Parse()
	if *serveFloor != "" {
		if err := floor(*serveFloor); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	dataDir, err := os.MkdirTemp("", "callrec-load-")
	if err == nil {
		switch *topology {
		case "run":
			err = compare(*bin, dataDir, *calls, *duration, *maxSearch, *maxDuration)
		case "pool":
			pc.Bin, pc.Dir = *bin, dataDir
			err = loadPool(pc, *calls, *duration, *maxSearch, *maxDuration)
		default:
			err = fmt.Errorf("-topology: want run or pool, got %q", *topology)
		}
		if *keep {
			fmt.Println("load: data and logs kept in", dataDir)
		} else {
			os.RemoveAll(dataDir)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// floor is the transport floor: accept WebSocket upgrades and discard
// every message. Nothing is parsed, stored or acknowledged.
func floor(addr string) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, rd, err := c.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return
			}
		}
	}))
}

// server is what a load run measures: the processes behind one media URL.
type server struct {
	name     string
	procs    []*child // stopped in this order
	mediaURL string
	// apis are the recorders' API base URLs (none: nothing is recorded),
	// read with apiToken; each call must be recorded copies times.
	apis     []string
	apiToken string
	copies   int
	// media are the base URLs of the /metrics pages whose
	// callrec_media_streams_active, summed, counts the calls streaming.
	media []string
}

// check is what verification found wrong.
type check struct {
	lost       int64 // frames sent but not recorded (each missing copy counts)
	incomplete int   // calls without every expected recording, complete and without a gap
	sameNode   int   // dual recording: calls whose copies are on one recorder
}

func startFloor() (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-floor", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: "floor", cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("floor did not start: %w", err)
	}
	return &server{name: "floor", procs: []*child{c},
		mediaURL: "ws://" + strings.TrimSpace(strings.TrimPrefix(line, "listening ")) + "/media"}, nil
}

func startRun(bin, dataDir string) (*server, error) {
	// The API needs a token: make one for this data dir (offline, before
	// run opens the user store).
	name := fmt.Sprintf("load-%d-%d", os.Getpid(), time.Now().UnixNano())
	out, err := exec.Command(bin, "token", "create", "--data-dir", dataDir, "--name", name, "--role", "admin").Output()
	if err != nil {
		return nil, fmt.Errorf("token create: %w", err)
	}
	apiToken := strings.TrimSpace(string(out))
	c, err := startCallrec("run", bin, filepath.Join(dataDir, "run.log"), "callrec running", "run", "--data-dir", dataDir,
		"--http-addr", "127.0.0.1:0", "--media-addr", "127.0.0.1:0", "--twilio-auth-token", token, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	return &server{name: "run", procs: []*child{c}, mediaURL: c.field("media_url"),
		apis: []string{c.field("http_url")}, apiToken: apiToken, copies: 1, media: []string{c.field("http_url")}}, nil
}

func (s *server) stop() {
	for _, c := range s.procs {
		c.stop()
	}
}

// cpu returns the user+system CPU time of every process of s.
func (s *server) cpu() (time.Duration, error) {
	var sum time.Duration
	for _, c := range s.procs {
		d, err := c.cpu()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// rss returns the resident set size of every process of s, summed.
func (s *server) rss() int64 {
	var sum int64
	for _, c := range s.procs {
		sum += c.rss()
	}
	return sum
}

// result is one measured load run.
type result struct {
	name             string
	calls            int
	duration         time.Duration
	cpu              time.Duration
	rssIdle, rssPeak int64
	failed           int
	framesSent       int64
	check                  // what was not recorded (servers that record)
	behind           int64 // frames never sent (calls that ended early)
	recorded         bool  // the server records, and check is meaningful
	// peak is the most calls the server had open at once (sampled each
	// second; -1: not known)
	peak int
	// stretch is by how much calls outlasted their audio (median, max):
	// connecting, closing, and every stall of the stream, which the
	// simulator does not make up for by bursting: a machine that cannot
	// keep up shows here, not in behind
	stretchMedian, stretchMax time.Duration
	// wall time: the calls, then until the last recording finished, and
	// the verification
	took, settle, verifyTook time.Duration
	// loadavg is the machine's 1-minute load average after the calls: with
	// more runnable threads than cores, from this run or anything else,
	// streams stall and the run is not sustained
	loadavg string
	// simCPU is the CPU time of this process (the simulator) over the calls
	simCPU time.Duration
	// steal is the share of the machine's CPU time the hypervisor gave to
	// others over the calls (-1: unknown): a virtual machine's cores are
	// not all its own, and stolen time stalls streams like a busy core
	steal float64
	// ackMean is the adapters' mean acknowledgement latency over the run
	// (callrec_link_ack_seconds; 0 when they do not export it)
	ackMean time.Duration
}

func (r result) cpuPerCallMinute() float64 {
	return r.cpu.Seconds() / (float64(r.calls) * r.duration.Minutes())
}

func (r result) memPerCall() float64 { return float64(r.rssPeak-r.rssIdle) / float64(r.calls) }

// sustained reports whether the run kept up with every call in real time
// and lost nothing, and whether the calls really were open all at once: when
// upgrades queue up, the first calls end before the last ones start, and
// no frame is late, yet fewer calls than asked were ever concurrent.
func (r result) sustained() bool {
	return r.lost == 0 && r.incomplete == 0 && r.sameNode == 0 && r.failed == 0 && r.behind <= 0 &&
		r.stretchMax <= maxStretch && (r.peak < 0 || r.peak >= r.calls)
}

// maxStretch is how much longer than its audio a call may take in a
// sustained run: connecting through the lb and closing take a few hundred
// milliseconds; more means the stream was stalled.
const maxStretch = time.Second

func measure(s *server, calls int, d time.Duration) (result, error) {
	r := result{name: s.name, calls: calls, duration: d, rssIdle: s.rss(), recorded: len(s.apis) > 0, peak: -1}
	cpu0, err := s.cpu()
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type peaks struct {
		rss  int64
		open int
	}
	peak := make(chan peaks, 1)
	go func() { // sample memory and open calls while the calls run
		t := time.NewTicker(time.Second)
		defer t.Stop()
		p := peaks{open: -1}
		for {
			select {
			case <-ctx.Done():
				peak <- p
				return
			case <-t.C:
				p.rss = max(p.rss, s.rss())
				if n, err := s.open(); err == nil {
					p.open = max(p.open, n)
				}
			}
		}
	}()
	ack0 := s.linkAcks()
	began, sim0, st0 := time.Now(), selfCPU(), machineCPU()
	sum, err := simulate.Run(context.Background(), simulate.Config{URL: s.mediaURL, AuthToken: token, Calls: calls,
		Duration: d, RampUp: 2 * time.Second, Seed: 1})
	if err != nil {
		return r, err
	}
	r.took, r.simCPU = time.Since(began), selfCPU()-sim0
	r.steal = machineCPU().stealSince(st0)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.loadavg, _, _ = strings.Cut(string(b), " ")
	}
	s.waitIdle() // let the last recordings finish before reading the CPU
	r.settle = time.Since(began) - r.took
	cpu1, err := s.cpu()
	if err != nil {
		return r, err
	}
	cancel()
	pk := <-peak
	r.rssPeak, r.peak = pk.rss, pk.open
	r.cpu, r.failed = cpu1-cpu0, sum.Failed
	r.framesSent = sum.FramesSent[0] + sum.FramesSent[1]
	// Every call owes 2 tracks × duration/20 ms frames, and the simulator
	// sends them all: after a stall it gives up the lost time rather than
	// bursting, so the call ends later (stretch). Fewer frames means calls
	// ended early.
	r.behind = int64(calls)*2*int64(d/(20*time.Millisecond)) - r.framesSent
	r.stretchMedian, r.stretchMax = stretch(sum, d)
	if ack1 := s.linkAcks(); ack0.ok && ack1.ok && ack1.count > ack0.count {
		r.ackMean = time.Duration((ack1.sum - ack0.sum) / (ack1.count - ack0.count) * float64(time.Second))
	}
	if r.recorded {
		began = time.Now()
		r.check, err = verifyRecorded(s.apis, s.apiToken, s.copies, sum)
		r.verifyTook = time.Since(began)
	}
	return r, err
}

// cpuTimes are the machine's CPU times from /proc/stat, in clock ticks.
type cpuTimes struct{ steal, total int64 }

func machineCPU() cpuTimes {
	var t cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] { // user nice system idle iowait irq softirq steal …
		n, _ := strconv.ParseInt(f, 10, 64)
		if i < 8 { // guest time is counted in user already
			t.total += n
		}
		if i == 7 {
			t.steal = n
		}
	}
	return t
}

// stealSince returns the share of stolen time since t0 (-1: unknown).
func (t cpuTimes) stealSince(t0 cpuTimes) float64 {
	if t.total <= t0.total {
		return -1
	}
	return float64(t.steal-t0.steal) / float64(t.total-t0.total)
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stretch returns the median and the largest time by which the calls of
// sum that did not fail outlasted d.
func stretch(sum *simulate.Summary, d time.Duration) (median, most time.Duration) {
	var xs []time.Duration
	for _, c := range sum.Calls {
		if c.Err == nil {
			xs = append(xs, c.Ended.Sub(c.Started)-d)
		}
	}
	if len(xs) == 0 {
		return 0, 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2], xs[len(xs)-1]
}

// open returns the calls s has open, as its media adapters count them.
func (s *server) open() (int, error) {
	if len(s.media) == 0 {
		return -1, nil
	}
	n := 0
	for _, u := range s.media {
		v, ok, err := metric(u, "callrec_media_streams_active")
		if err != nil || !ok {
			return 0, fmt.Errorf("callrec_media_streams_active of %s: %v", u, err)
		}
		n += int(v)
	}
	return n, nil
}

// acks is the adapters' callrec_link_ack_seconds histogram's sum and count.
type acks struct {
	sum, count float64
	ok         bool
}

func (s *server) linkAcks() acks {
	a := acks{ok: len(s.media) > 0}
	for _, u := range s.media {
		sum, ok1, err1 := metric(u, "callrec_link_ack_seconds_sum")
		n, ok2, err2 := metric(u, "callrec_link_ack_seconds_count")
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return acks{}
		}
		a.sum, a.count = a.sum+sum, a.count+n
	}
	return a
}

// waitIdle waits (30 s at most) until no recorder of s has a recording
// open.
func (s *server) waitIdle() {
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range s.apis {
		for time.Now().Before(deadline) {
			var l struct{ Total int }
			if getJSON(u+"/api/recordings?state=recording&limit=1", s.apiToken, &l) == nil && l.Total == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func compare(bin, dataDir string, calls int, d time.Duration, maxSearch string, maxD time.Duration) error {
	fl, err := startFloor()
	if err != nil {
		return err
	}
	defer fl.stop()
	run, err := startRun(bin, filepath.Join(dataDir, "run"))
	if err != nil {
		return err
	}
	defer run.stop()

	fmt.Printf("load: %d concurrent two-track calls × %v, real time, simulator in this process (same machine)\n", calls, d)
	var rs []result
	for _, s := range []*server{fl, run} {
		r, err := measure(s, calls, d)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rs = append(rs, r)
		report(r)
	}
	fmt.Printf("ratio run/floor: %.2f× CPU per call-minute\n", rs[1].cpuPerCallMinute()/rs[0].cpuPerCallMinute())
	return searchMax(run, maxSearch, maxD)
}

// searchMax raises the number of concurrent calls through the counts of
// list (comma-separated) until a run is not sustained, and reports the
// largest one that was.
func searchMax(s *server, list string, d time.Duration) error {
	if list == "" {
		return nil
	}
	fmt.Printf("load: largest load %s sustains: %s concurrent calls × %v, up to the first that loses a frame or falls behind\n", s.name, list, d)
	var best *result
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-max: %w", err)
		}
		r, err := measure(s, n, d)
		if err != nil {
			return err
		}
		report(r)
		if !r.sustained() {
			break
		}
		best = &r
	}
	if best == nil {
		fmt.Printf("largest load sustained by %s in real time with zero lost frames: none of %s\n", s.name, list)
		return nil
	}
	fmt.Printf("largest load sustained by %s in real time with zero lost frames: %d concurrent calls (%.4f CPU-s per call-minute, %.1f%% of a core per call)\n",
		s.name, best.calls, best.cpuPerCallMinute(), 100*best.cpuPerCallMinute()/60)
	return nil
}

func report(r result) {
	fmt.Printf("%-5s calls=%d cpu=%.2fs cpu/call-minute=%.4fs mem/call=%.1fKiB rss=%.1fMiB failed=%d frames=%d",
		r.name, r.calls, r.cpu.Seconds(), r.cpuPerCallMinute(), r.memPerCall()/1024, float64(r.rssPeak)/(1<<20), r.failed, r.framesSent)
	fmt.Printf(" behind=%d", r.behind)
	fmt.Printf(" stretch=%.2fs/%.2fs", r.stretchMedian.Seconds(), r.stretchMax.Seconds())
	if r.peak >= 0 {
		fmt.Printf(" peak-open=%d", r.peak)
	}
	if r.ackMean > 0 {
		fmt.Printf(" link-ack=%.2fs", r.ackMean.Seconds())
	}
	if r.recorded {
		fmt.Printf(" lost=%d incomplete=%d", r.lost, r.incomplete)
		if strings.Contains(r.name, "dual") {
			fmt.Printf(" same-recorder=%d", r.sameNode)
		}
	}
	fmt.Printf(" (%.0fs of calls, simulator cpu=%.1fs, load average %s, cpu steal %.0f%%, %.1fs to settle",
		r.took.Seconds(), r.simCPU.Seconds(), r.loadavg, 100*r.steal, r.settle.Seconds())
	if r.recorded {
		fmt.Printf(", %.1fs to verify", r.verifyTook.Seconds())
	}
	fmt.Println(")")
}

// verifyRecorded checks, on the recorders' APIs, that every call of sum
// was recorded copies times (each copy on a different recorder), complete,
// with every frame the simulator sent.
func verifyRecorded(apiURLs []string, apiToken string, copies int, sum *simulate.Summary) (check, error) {
	found, err := findRecordings(apiURLs, apiToken, sum)
	if err != nil {
		return check{}, err
	}
	var c check
	for i, call := range sum.Calls {
		c.add(judge(call, found[i], copies))
	}
	return c, nil
}

// held is a recording as one recorder (by its index) holds it.
type held struct {
	node int
	rec  callrec.Recording
}

// findRecordings asks every recorder for the recordings of each call's
// stream, eight requests at a time.
func findRecordings(apiURLs []string, apiToken string, sum *simulate.Summary) ([][]held, error) {
	found := make([][]held, len(sum.Calls))
	errs := make(chan error, len(sum.Calls))
	sem := make(chan struct{}, 8)
	for i, call := range sum.Calls {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			for node, u := range apiURLs {
				var l struct{ Recordings []callrec.Recording }
				if err := getJSON(u+"/api/recordings?stream_sid="+call.StreamSID, apiToken, &l); err != nil {
					errs <- err
					return
				}
				for _, r := range l.Recordings {
					found[i] = append(found[i], held{node: node, rec: r})
				}
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	select {
	case err := <-errs:
		return nil, err
	default:
		return found, nil
	}
}

// judge checks one call's recordings: copies of them, complete, on as many
// recorders, each with every frame sent and no gap.
func judge(call simulate.CallResult, recs []held, copies int) check {
	var c check
	bad := len(recs) != copies
	nodes := map[int]bool{}
	for _, h := range recs {
		nodes[h.node] = true
		if h.rec.State != callrec.StateComplete {
			bad = true
		}
		got := map[string]callrec.TrackAccounting{}
		for _, ta := range h.rec.Accounting.Tracks {
			got[ta.Track] = ta
		}
		for t := range callrec.NumTracks {
			ta := got[callrec.Track(t).String()]
			if ta.Missing != 0 {
				bad = true
			}
			if n := call.Tracks[t].Frames - ta.Received; n > 0 {
				c.lost += n
				bad = true
			}
		}
	}
	if n := copies - len(recs); n > 0 {
		c.lost += int64(n) * (call.Tracks[0].Frames + call.Tracks[1].Frames)
	}
	if copies > 1 && len(recs) > 1 && len(nodes) < len(recs) {
		c.sameNode++
		bad = true
	}
	if bad {
		c.incomplete++
	}
	return c
}

func (c *check) add(o check) {
	c.lost += o.lost
	c.incomplete += o.incomplete
	c.sameNode += o.sameNode
}
