// Command load measures callrec under load, side by side with the transport
// floor: a bare gorilla/websocket server that reads and discards messages.
//
// It starts both servers as child processes, drives each with the
// simulator (in this process, real time, signed, two tracks), and reports
// server CPU-seconds per call-minute (from /proc/<pid>/stat), resident memory
// per call, their ratio, and whether `callrec run` recorded every frame.
// With -max it then raises the number of concurrent calls until run loses a
// frame or falls behind, and reports the largest count it sustained.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"callrec"
	"callrec/simulate"
)

const token = "12345678901234567890123456789012"

func main() {
	serveFloor := flag.String("serve-floor", "", "internal: run the floor server on this address")
	calls := flag.Int("calls", 200, "concurrent two-track calls")
	duration := flag.Duration("duration", 60*time.Second, "audio per call")
	bin := flag.String("bin", "bin/callrec", "callrec binary")
	maxSearch := flag.String("max", "", "comma-separated call counts to try for the largest sustained load, e.g. 400,800,1200")
	maxDuration := flag.Duration("max-duration", 30*time.Second, "audio per call in the -max search")
	flag.Parse()
	if *serveFloor != "" {
		if err := floor(*serveFloor); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := compare(*bin, *calls, *duration, *maxSearch, *maxDuration); err != nil {
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

// server is a child process under measurement.
type server struct {
	name     string
	cmd      *exec.Cmd
	mediaURL string
	httpURL  string
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
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("floor did not start: %w", err)
	}
	return &server{name: "floor", cmd: cmd, mediaURL: "ws://" + strings.TrimSpace(strings.TrimPrefix(line, "listening ")) + "/media"}, nil
}

// apiToken is the admin API token the load tool reads recordings with.
var apiToken string

func startRun(bin, dataDir string) (*server, error) {
	// The API needs a token: make one for this data dir (offline, before
	// run opens the user store).
	name := fmt.Sprintf("load-%d-%d", os.Getpid(), time.Now().UnixNano())
	out, err := exec.Command(bin, "token", "create", "--data-dir", dataDir, "--name", name, "--role", "admin").Output()
	if err != nil {
		return nil, fmt.Errorf("token create: %w", err)
	}
	apiToken = strings.TrimSpace(string(out))
	cmd := exec.Command(bin, "run", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--media-addr", "127.0.0.1:0",
		"--twilio-auth-token", token, "--log-level", "info", "--log-format", "json")
	errp, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(errp)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	s := &server{name: "run", cmd: cmd}
	for sc.Scan() {
		var l struct {
			Msg      string `json:"msg"`
			MediaURL string `json:"media_url"`
			HTTPURL  string `json:"http_url"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "callrec running" {
			s.mediaURL, s.httpURL = l.MediaURL, l.HTTPURL
			go func() { _, _ = io.Copy(io.Discard, errp) }()
			return s, nil
		}
	}
	return nil, fmt.Errorf("callrec run did not start")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the process's user+system CPU time.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ = 100
}

// rss returns the resident set size in bytes.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
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
	lost             int64 // frames sent but not recorded (run only)
	incomplete       int   // recordings not complete (run only)
	behind           int64 // frames the simulator could not send in real time
}

func (r result) cpuPerCallMinute() float64 {
	return r.cpu.Seconds() / (float64(r.calls) * r.duration.Minutes())
}

func (r result) memPerCall() float64 { return float64(r.rssPeak-r.rssIdle) / float64(r.calls) }

func measure(s *server, calls int, d time.Duration) (result, error) {
	r := result{name: s.name, calls: calls, duration: d, rssIdle: s.rss()}
	cpu0, err := s.cpu()
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // sample memory while the calls run
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.rssPeak = max(r.rssPeak, s.rss())
			}
		}
	}()
	sum, err := simulate.Run(context.Background(), simulate.Config{URL: s.mediaURL, AuthToken: token, Calls: calls,
		Duration: d, RampUp: 2 * time.Second, Seed: 1})
	if err != nil {
		return r, err
	}
	if s.httpURL != "" { // let the last recordings finish before reading the CPU
		waitIdle(s.httpURL)
	}
	cpu1, err := s.cpu()
	if err != nil {
		return r, err
	}
	cancel()
	r.cpu, r.failed = cpu1-cpu0, sum.Failed
	r.framesSent = sum.FramesSent[0] + sum.FramesSent[1]
	// Every call owes 2 tracks × duration/20 ms frames. The simulator gives
	// up lost time rather than bursting (as Twilio would drop audio when our
	// socket is slow), so fewer frames means the machine could not keep up.
	r.behind = int64(calls)*2*int64(d/(20*time.Millisecond)) - r.framesSent
	if s.httpURL != "" {
		r.lost, r.incomplete, err = verify(s.httpURL, sum)
	}
	return r, err
}

func waitIdle(httpURL string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var l struct{ Total int }
		if getJSON(httpURL+"/api/recordings?state=recording&limit=1", &l) == nil && l.Total == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verify checks that run recorded every frame the simulator sent.
func verify(httpURL string, sum *simulate.Summary) (lost int64, incomplete int, err error) {
	for _, c := range sum.Calls {
		var l struct{ Recordings []callrec.Recording }
		if err := getJSON(httpURL+"/api/recordings?stream_sid="+c.StreamSID, &l); err != nil {
			return 0, 0, err
		}
		if len(l.Recordings) != 1 {
			incomplete++
			lost += c.Tracks[0].Frames + c.Tracks[1].Frames
			continue
		}
		rec := l.Recordings[0]
		if rec.State != callrec.StateComplete {
			incomplete++
		}
		for i, ta := range rec.Accounting.Tracks {
			lost += c.Tracks[i].Frames - ta.Received
		}
	}
	return lost, incomplete, nil
}

func getJSON(u string, v any) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if apiToken != "" {
		req.Header.Set("Authorization", "Bearer "+apiToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func compare(bin string, calls int, d time.Duration, maxSearch string, maxD time.Duration) error {
	dataDir, err := os.MkdirTemp("", "callrec-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
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
	if maxSearch == "" {
		return nil
	}
	best := 0
	for _, f := range strings.Split(maxSearch, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-max: %w", err)
		}
		r, err := measure(run, n, maxD)
		if err != nil {
			return err
		}
		report(r)
		if r.lost != 0 || r.incomplete != 0 || r.failed != 0 || r.behind > 0 {
			break
		}
		best = n
	}
	fmt.Printf("largest load sustained by run in real time with zero lost frames: %d concurrent calls\n", best)
	return nil
}

func report(r result) {
	fmt.Printf("%-5s calls=%d cpu=%.2fs cpu/call-minute=%.4fs mem/call=%.1fKiB rss=%.1fMiB failed=%d frames=%d",
		r.name, r.calls, r.cpu.Seconds(), r.cpuPerCallMinute(), r.memPerCall()/1024, float64(r.rssPeak)/(1<<20), r.failed, r.framesSent)
	fmt.Printf(" behind=%d", r.behind)
	if r.name == "run" {
		fmt.Printf(" lost=%d incomplete=%d", r.lost, r.incomplete)
	}
	fmt.Println()
}
