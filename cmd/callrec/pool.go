package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/placement"
	"callrec/pool"
)

// poolFlags are the membership flags of the pooled roles. The pool is on
// when --pool-seeds or --pool-bind is given.
type poolFlags struct {
	Seeds     string
	Bind      string
	Advertise string
	KeyFile   string
	Name      string
	Cluster   string
	Fast      bool
	bindSet   bool
}

func (f *poolFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Seeds, "pool-seeds", "", "join the pool through these members: host[:port] or DNS names (a Kubernetes headless service), comma-separated")
	fs.Func("pool-bind", "gossip listen host:port (default :7946 when --pool-seeds is given; turns the pool on)", func(s string) error {
		f.Bind, f.bindSet = s, true
		return nil
	})
	fs.StringVar(&f.Advertise, "pool-advertise", "", "address others reach this node at (gossip and services); default: the bound address, or the first private address")
	fs.StringVar(&f.KeyFile, "pool-key-file", "", "file holding the pool's base64 key (16/24/32 bytes): encrypts and authenticates gossip and drain requests; required in production")
	fs.StringVar(&f.Name, "pool-name", "", "this node's unique name in the pool (default: host name plus a random suffix; Kubernetes: the pod name)")
	fs.StringVar(&f.Cluster, "pool-cluster", "", "pool name that keeps pools on one network apart (not a security boundary)")
	fs.BoolVar(&f.Fast, "pool-fast", false, "fast failure detection for a single machine or tests (short probe intervals)")
}

// on reports whether the pool is configured.
func (f *poolFlags) on() bool { return f.Seeds != "" || f.bindSet }

// config builds the pool configuration.
func (f *poolFlags) config(log *slog.Logger, reg prometheus.Registerer) (pool.Config, error) {
	cfg := pool.Config{Name: f.Name, Cluster: f.Cluster, Fast: f.Fast, Log: log, Registerer: reg}
	bind := f.Bind
	if bind == "" {
		bind = ":" + strconv.Itoa(pool.DefaultPort)
	}
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return cfg, fmt.Errorf("--pool-bind %q: %w", bind, err)
	}
	cfg.BindAddr = host
	if cfg.BindPort, err = strconv.Atoi(port); err != nil {
		return cfg, fmt.Errorf("--pool-bind %q: bad port", bind)
	}
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if f.Advertise != "" {
		if h, p, err := net.SplitHostPort(f.Advertise); err == nil {
			cfg.AdvertiseAddr = h
			cfg.AdvertisePort, _ = strconv.Atoi(p)
		} else {
			cfg.AdvertiseAddr = f.Advertise
		}
	}
	for _, s := range strings.Split(f.Seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Seeds = append(cfg.Seeds, s)
		}
	}
	if f.KeyFile != "" {
		b, err := os.ReadFile(f.KeyFile)
		if err != nil {
			return cfg, fmt.Errorf("--pool-key-file: %w", err)
		}
		if cfg.SecretKey, err = pool.ParseSecretKey(strings.TrimSpace(string(b))); err != nil {
			return cfg, fmt.Errorf("--pool-key-file %s: %w", f.KeyFile, err)
		}
	}
	return cfg, nil
}

// advertiseHost is the host others use for this node's services: the
// --pool-advertise host, else the listener's own host unless it is a
// wildcard, else the gossip address's host.
func advertiseHost(f *poolFlags, listen net.Addr, p *pool.Pool) string {
	if f.Advertise != "" {
		if h, _, err := net.SplitHostPort(f.Advertise); err == nil {
			return h
		}
		return f.Advertise
	}
	if host, _, err := net.SplitHostPort(listen.String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return host
		}
	}
	if p != nil {
		if host, _, err := net.SplitHostPort(p.Self().Addr); err == nil {
			return host
		}
	}
	return "127.0.0.1"
}

// serviceAddr is host:port of a listener as others reach it.
func serviceAddr(f *poolFlags, listen net.Addr, p *pool.Pool) string {
	_, port, _ := net.SplitHostPort(listen.String())
	return net.JoinHostPort(advertiseHost(f, listen, p), port)
}

// freeDisk is the free space under dir, rounded down to GiB so it does not
// change with every write (each change is gossiped).
func freeDisk(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	free := st.Bavail * uint64(st.Bsize)
	return free &^ (1<<30 - 1)
}

// announceActive re-announces the local metadata soon after active()
// changes (placement elsewhere reads it), instead of waiting for the
// pool's periodic refresh.
func announceActive(ctx context.Context, p *pool.Pool, active func() int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := active(); n != last {
			last = n
			_ = p.Update()
		}
	}
}

// recorderView is placement's view of the pool: live, non-draining
// recorders.
type recorderView struct{ p *pool.Pool }

func (v recorderView) Recorders() []placement.Recorder {
	var out []placement.Recorder
	for _, m := range v.p.Members() {
		if m.Meta.Role != pool.RoleRecorder || m.State != pool.StateAlive || m.Meta.Draining || m.Meta.Addr == "" {
			continue
		}
		free := -1
		if m.Meta.Capacity > 0 {
			free = max(m.Meta.Capacity-m.Meta.Active, 0)
		}
		out = append(out, placement.Recorder{Name: m.Name, Addr: m.Meta.Addr, Free: free, Active: m.Meta.Active})
	}
	return out
}

func (v recorderView) Alive(name string) (string, bool) {
	m, ok := v.p.Member(name)
	if !ok || m.State != pool.StateAlive || m.Meta.Role != pool.RoleRecorder {
		return "", false
	}
	return m.Meta.Addr, true
}

// drainThenStop waits until active() is 0 (the node finished its streams
// after a drain), then calls stop.
func drainThenStop(ctx context.Context, active func() int, stop func(), log *slog.Logger) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if active() == 0 {
			log.Info("drained: every stream finished; leaving the pool")
			stop()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runPoolCommand is `callrec pool status|drain`.
func runPoolCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: callrec pool status [flags] | callrec pool drain [--wait D] [flags] NODE"
	if len(args) == 0 || (args[0] != "status" && args[0] != "drain") {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown pool command")
	}
	sub := args[0]
	about := "Joins the pool briefly and lists its members: role, state, load, disk, version."
	if sub == "drain" {
		about = "Asks NODE to drain: it takes no new stream, finishes the ones it has, then leaves the pool. With --wait, waits until it has no stream left (or is gone)."
	}
	fs := newFlagSet("pool "+sub, about, stderr)
	var pf poolFlags
	pf.register(fs)
	wait := fs.Duration("wait", 0, "drain: wait this long for the node to finish its streams (0: do not wait)")
	var lf logFlags
	lf.register(fs)
	rest := args[1:]
	var node string
	if sub == "drain" {
		// NODE may come before or after the flags.
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			node, rest = rest[0], rest[1:]
		}
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if sub == "drain" && node == "" {
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, usage)
			return fmt.Errorf("pool drain: name one node")
		}
		node = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := parseFlags(fs, nil, nil); err != nil { // environment for flags not given
		return err
	}
	if pf.Seeds == "" {
		return fmt.Errorf("--pool-seeds (or CALLREC_POOL_SEEDS) is required")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	pf.Bind, pf.bindSet = "0.0.0.0:0", true // an operator tool: an ephemeral port
	cfg, err := pf.config(log, nil)
	if err != nil {
		return err
	}
	if pf.Name == "" {
		h, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("cli-%s-%d", h, os.Getpid())
	}
	cfg.Meta = func() pool.Meta { return pool.Meta{Role: pool.RoleCLI, Version: callrec.Version} }
	p, err := pool.Join(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Leave(2 * time.Second)
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.WaitJoined(jctx); err != nil {
		return fmt.Errorf("could not join the pool through %s: %w", pf.Seeds, err)
	}
	if sub == "status" {
		printMembers(stdout, p.Members())
		return nil
	}
	return drainNode(ctx, p, node, *wait, stdout)
}

func printMembers(w io.Writer, ms []pool.Member) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tADDR\tACTIVE\tCAPACITY\tFREE DISK\tDRAINING\tVERSION\tUP")
	for _, m := range ms {
		if m.Meta.Role == pool.RoleCLI {
			continue
		}
		capacity := "-"
		if m.Meta.Capacity > 0 {
			capacity = strconv.Itoa(m.Meta.Capacity)
		}
		disk := "-"
		if m.Meta.FreeDiskBytes > 0 {
			disk = fmt.Sprintf("%d GiB", m.Meta.FreeDiskBytes>>30)
		}
		up := "-"
		if !m.Meta.Started.IsZero() {
			up = time.Since(m.Meta.Started).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%v\t%s\t%s\n", m.Name, m.Meta.Role, m.State, m.Meta.Addr,
			m.Meta.Active, capacity, disk, m.Meta.Draining, m.Meta.Version, up)
	}
	_ = tw.Flush()
}

// drainNode asks node to drain. Seeing its metadata say draining counts as
// the acknowledgement too (the direct answer may not reach an operator's
// ephemeral port through network policies).
func drainNode(ctx context.Context, p *pool.Pool, node string, wait time.Duration, stdout io.Writer) error {
	m, ok := p.Member(node)
	if !ok || m.State != pool.StateAlive {
		fmt.Fprintf(stdout, "%s is not a live member of the pool: nothing to drain\n", node)
		return nil
	}
	err := p.Drain(ctx, node)
	if err != nil && !errors.Is(err, pool.ErrUnknownMember) {
		if m, ok := p.Member(node); !ok || !m.Meta.Draining {
			return fmt.Errorf("drain %s: %w", node, err)
		}
	}
	fmt.Fprintf(stdout, "%s is draining\n", node)
	if wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		m, ok := p.Member(node)
		if !ok || m.State != pool.StateAlive {
			fmt.Fprintf(stdout, "%s finished its streams and left\n", node)
			return nil
		}
		if m.Meta.Active == 0 {
			fmt.Fprintf(stdout, "%s has no stream left\n", node)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has %d streams after %s", node, m.Meta.Active, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
