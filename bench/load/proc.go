package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// child is a process under measurement.
type child struct {
	name   string
	cmd    *exec.Cmd
	fields map[string]any // callrec: its "… running" log line
	log    string         // callrec: the file its stderr goes to
	done   chan struct{}  // closed when it has exited
	err    error          // its exit status, once done
}

// startCallrec starts `bin args…` with JSON logs into logPath and waits
// for the log line whose msg is ready.
func startCallrec(name, bin, logPath, ready string, args ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--log-format", "json")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	readyc := make(chan map[string]any, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer f.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		seen := false
		for sc.Scan() {
			_, _ = f.Write(append(sc.Bytes(), '\n'))
			var l map[string]any
			if !seen && json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == ready {
				readyc <- l
				seen = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // a line too long for the scanner
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		c.err = cmd.Wait()
		close(c.done)
	}()
	select {
	case c.fields = <-readyc:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", name, c.err, tail(logPath, 8))
	case <-time.After(30 * time.Second):
		c.kill()
		return nil, fmt.Errorf("%s not ready within 30s:\n%s", name, tail(logPath, 8))
	}
}

// field returns a string field of the ready line.
func (c *child) field(k string) string {
	s, _ := c.fields[k].(string)
	return s
}

// stop interrupts the process and waits for it to exit (killing it after
// 30 s).
func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.kill()
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// exited reports an error if the process is gone.
func (c *child) exited() error {
	select {
	case <-c.done:
		if c.log != "" {
			return fmt.Errorf("%s exited (%v):\n%s", c.name, c.err, tail(c.log, 8))
		}
		return fmt.Errorf("%s exited (%v)", c.name, c.err)
	default:
		return nil
	}
}

// cpu returns the process's user+system CPU time.
func (c *child) cpu() (time.Duration, error) {
	if err := c.exited(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ = 100
}

// rss returns the resident set size in bytes.
func (c *child) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
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

// tail returns the last n lines of a file, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	return "    " + strings.Join(lines, "\n    ")
}

// getJSON GETs u (with a bearer token unless it is "") into v.
func getJSON(u, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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

// metric reads one sample (name and labels exactly as exposed) from a
// /metrics page; ok is false when the page has no such sample.
func metric(baseURL, sample string) (v float64, ok bool, err error) {
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if s, found := strings.CutPrefix(sc.Text(), sample+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			return v, err == nil, err
		}
	}
	return 0, false, sc.Err()
}
