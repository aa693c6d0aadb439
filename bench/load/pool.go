package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// poolConfig is the pool topology: recorders and media adapters, each a
// process of bin, joined in a pool on loopback, behind one `callrec lb`.
type poolConfig struct {
	Bin                 string
	Dir                 string // data dirs and logs
	Adapters, Recorders int
	Dual                bool // adapters run with --dual-recording
}

func (pc poolConfig) name() string {
	n := fmt.Sprintf("pool(%da,%dr", pc.Adapters, pc.Recorders)
	if pc.Dual {
		n += ",dual"
	}
	return n + ")"
}

func (pc poolConfig) copies() int {
	if pc.Dual {
		return 2
	}
	return 1
}

// loadPool measures calls through the lb (none if calls is 0), then
// searches for the largest load the pool sustains.
func loadPool(pc poolConfig, calls int, d time.Duration, maxSearch string, maxD time.Duration) error {
	switch {
	case pc.Adapters < 1 || pc.Recorders < 1:
		return fmt.Errorf("-adapters and -recorders: want at least 1 each")
	case pc.Dual && pc.Recorders < 2:
		return fmt.Errorf("-dual-recording needs at least 2 recorders")
	}
	p, err := startPool(pc)
	if err != nil {
		return err
	}
	defer p.stop()
	fmt.Printf("load: %s: %d media adapters, %d recorders (%d recording(s) per call) and an lb, each a process of %s joined in a pool on loopback; simulator in this process (same machine)\n",
		p.name, pc.Adapters, pc.Recorders, pc.copies(), pc.Bin)
	if calls > 0 {
		fmt.Printf("load: %d concurrent two-track calls × %v through the lb, real time\n", calls, d)
		r, err := measure(p, calls, d)
		if err != nil {
			return err
		}
		report(r)
	}
	return searchMax(p, maxSearch, maxD)
}

// startPool starts the recorders (the first is the pool's seed), the lb,
// then the media adapters, and waits until the lb sees every adapter and
// every adapter every recorder.
func startPool(pc poolConfig) (_ *server, err error) {
	adapterCmd, err := commandOf(pc.Bin, "mediaadapter", "adapter")
	if err != nil {
		return nil, err
	}
	if pc.Dual {
		if ok, err := hasFlag(pc.Bin, adapterCmd, "dual-recording"); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%s %s has no --dual-recording flag (rebuild it: make build)", pc.Bin, adapterCmd)
		}
	}
	var recs, ads []*child
	var lb *child
	defer func() {
		if err != nil { // stop what started
			for _, c := range append(append(ads, lb), recs...) {
				if c != nil {
					c.kill()
				}
			}
		}
	}()
	// As deployed: memberlist's LAN timings (not --pool-fast, which also
	// takes a loaded machine's slow answers for failures), gossip
	// encrypted, the recordings API behind a token. Its own cluster name
	// keeps other pools on this machine (tests) apart.
	keyFile, apiToken := filepath.Join(pc.Dir, "pool.key"), randomHex(16)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString([]byte(randomHex(16)))), 0o600); err != nil {
		return nil, err
	}
	common := []string{"--pool-bind", "127.0.0.1:0", "--pool-key-file", keyFile,
		"--pool-cluster", fmt.Sprintf("load-%d", os.Getpid()), "--log-level", "info"}
	start := func(name, ready string, args ...string) (*child, error) {
		if len(recs) > 0 {
			args = append(args, "--pool-seeds", recs[0].field("pool_addr"))
		}
		args = append(append(args, common...), "--pool-name", name)
		return startCallrec(name, pc.Bin, filepath.Join(pc.Dir, name+".log"), ready, args...)
	}
	for i := 1; i <= pc.Recorders; i++ {
		name := fmt.Sprintf("recorder%d", i)
		c, err := start(name, "recorder running", "recorder", "--data-dir", filepath.Join(pc.Dir, name), "--node-id", strconv.Itoa(i),
			"--link-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-token", apiToken)
		if err != nil {
			return nil, err
		}
		recs = append(recs, c)
	}
	if lb, err = start("lb", "lb running", "lb", "--listen-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	public := "ws://" + lb.field("listen_addr") + "/media"
	for i := 1; i <= pc.Adapters; i++ {
		args := []string{adapterCmd, "--media-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--twilio-auth-token", token, "--public-url", public}
		if pc.Dual {
			args = append(args, "--dual-recording")
		}
		c, err := start(fmt.Sprintf("adapter%d", i), "media adapter running", args...)
		if err != nil {
			return nil, err
		}
		ads = append(ads, c)
	}
	// Who must see whom before calls go through the lb.
	type sees struct {
		c      *child
		sample string
		n      int
	}
	want := []sees{{lb, `callrec_pool_members{role="mediaadapter",state="alive"}`, pc.Adapters}}
	for _, a := range ads {
		want = append(want, sees{a, `callrec_pool_members{role="recorder",state="alive"}`, pc.Recorders})
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range want {
		for {
			v, _, err := metric("http://"+w.c.field("http_addr"), w.sample)
			if err == nil && int(v) == w.n {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s sees %v of %d members (%s) after 30s (err %v)", w.c.name, v, w.n, w.sample, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var apis []string
	for _, r := range recs {
		apis = append(apis, "http://"+r.field("http_addr"))
	}
	// Stop the lb first, then the adapters (they finish their streams), the
	// recorders last.
	procs := append(append([]*child{lb}, ads...), recs...)
	var media []string
	for _, a := range ads {
		media = append(media, "http://"+a.field("http_addr"))
	}
	return &server{name: pc.name(), procs: procs, mediaURL: public, apis: apis, apiToken: apiToken, copies: pc.copies(), media: media}, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// helpOf returns what `bin args… --help` prints.
func helpOf(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if len(out) == 0 && err != nil {
		return "", fmt.Errorf("%s %s --help: %w", bin, strings.Join(args, " "), err)
	}
	return string(out), nil // --help exits 2 after printing
}

// commandOf returns the first of names that bin lists as a command.
func commandOf(bin string, names ...string) (string, error) {
	help, err := helpOf(bin)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if strings.Contains(help, "\n  "+n+" ") {
			return n, nil
		}
	}
	return "", fmt.Errorf("%s has none of the commands %q", bin, names)
}

// hasFlag reports whether `bin cmd` has --flag.
func hasFlag(bin, cmd, flag string) (bool, error) {
	help, err := helpOf(bin, cmd)
	if err != nil {
		return false, err
	}
	return regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(flag) + `(\s|$)`).MatchString(help), nil
}
