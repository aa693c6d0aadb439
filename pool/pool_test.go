package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec/internal/callrectest"
	"callrec/pool"
)

// node is a pool member under test, with metadata the test can change.
type node struct {
	*pool.Pool
	mu     sync.Mutex
	meta   pool.Meta
	drains atomic.Int32
}

func (n *node) setMeta(f func(*pool.Meta)) {
	n.mu.Lock()
	f(&n.meta)
	n.mu.Unlock()
}

// addActive adds d to the node's Active and announces it, as a recorder does
// when a stream starts.
func (n *node) addActive(tb testing.TB, d int) {
	n.setMeta(func(m *pool.Meta) { m.Active += d })
	if err := n.Update(); err != nil {
		tb.Error(err)
	}
}

// start joins a pool on 127.0.0.1 with a random port and Fast tuning. It
// shuts the member down when the test ends.
func start(tb testing.TB, meta pool.Meta, seeds []string, opts ...func(*pool.Config)) *node {
	tb.Helper()
	n := &node{meta: meta}
	cfg := pool.Config{
		Name:     fmt.Sprintf("%s-%s", meta.Role, strings.ReplaceAll(meta.Addr, ":", "-")),
		BindAddr: "127.0.0.1",
		Seeds:    seeds,
		Fast:     true,
		Meta: func() pool.Meta {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.meta
		},
		RefreshInterval: 200 * time.Millisecond,
		OnDrain:         func() { n.drains.Add(1) },
		Log:             callrectest.Logger(tb),
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := pool.Join(callrectest.Context(tb), cfg)
	if err != nil {
		tb.Fatalf("join %s: %v", cfg.Name, err)
	}
	// Shutdown, not Leave: quicker, and TestLeave_SeenAsLeft covers Leave.
	tb.Cleanup(func() { _ = p.Shutdown() })
	n.Pool = p
	return n
}

func named(name string) func(*pool.Config) { return func(c *pool.Config) { c.Name = name } }

func recorder(addr string, capacity int) pool.Meta {
	return pool.Meta{Role: pool.RoleRecorder, Addr: addr, Capacity: capacity, RecorderNode: 1}
}

func adapter(addr string) pool.Meta {
	return pool.Meta{Role: pool.RoleMediaAdapter, Addr: addr}
}

// waitMembers waits until every node sees want live members.
func waitMembers(tb testing.TB, want int, nodes ...*node) {
	tb.Helper()
	for _, n := range nodes {
		callrectest.Eventually(tb, 15*time.Second, fmt.Sprintf("%s sees %d members", n.Name(), want), func() bool {
			return len(n.Members()) == want
		})
	}
}

// waitEvent returns the first event on ch that match accepts.
func waitEvent(tb testing.TB, ch <-chan pool.Event, timeout time.Duration, what string, match func(pool.Event) bool) pool.Event {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				tb.Fatalf("subscription closed while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			tb.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func memberNames(ms []pool.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestJoin_SeedsAndMeta(t *testing.T) {
	t.Parallel()
	a := start(t, recorder("10.0.0.1:7070", 100), nil, named("a"))
	self := a.Self()
	if _, port, _ := net.SplitHostPort(self.Addr); port == "0" || port == "" || !strings.HasPrefix(self.Addr, "127.0.0.1:") {
		t.Fatalf("Self().Addr = %q, want 127.0.0.1 and the bound port", self.Addr)
	}
	if !a.Joined() {
		t.Error("a pool without seeds is not joined")
	}
	b := start(t, recorder("10.0.0.2:7070", 50), []string{self.Addr}, named("b"))
	c := start(t, adapter("ws://10.0.0.3:8080/media"), []string{self.Addr}, named("c"))
	for _, n := range []*node{b, c} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.WaitJoined(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	waitMembers(t, 3, a, b, c)

	if got := memberNames(b.Members()); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("Members() = %v, want a,b,c sorted", got)
	}
	got, ok := c.Member("b")
	if !ok {
		t.Fatal("c does not know b")
	}
	if got.State != pool.StateAlive || got.Addr != b.Self().Addr {
		t.Errorf("b as c sees it = %+v, want alive at %s", got, b.Self().Addr)
	}
	m := got.Meta
	if m.Role != pool.RoleRecorder || m.Addr != "10.0.0.2:7070" || m.Capacity != 50 || m.RecorderNode != 1 || m.Version == "" || m.Started.IsZero() {
		t.Errorf("b's meta as c sees it = %+v", m)
	}
	if c.Self().Meta.Addr != "ws://10.0.0.3:8080/media" {
		t.Errorf("c's own meta = %+v", c.Self().Meta)
	}
}

func TestUpdate_Propagates(t *testing.T) {
	t.Parallel()
	a := start(t, adapter("10.0.1.1:80"), nil, named("a"))
	b := start(t, recorder("10.0.1.2:7070", 100), []string{a.Self().Addr}, named("b"))
	waitMembers(t, 2, a, b)
	events, cancel := a.Subscribe()
	defer cancel()

	b.setMeta(func(m *pool.Meta) { m.Active = 42; m.FreeDiskBytes = 1 << 33 })
	if err := b.Update(); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, 5*time.Second, "update with Active 42", func(ev pool.Event) bool {
		return ev.Type == pool.EventUpdate && ev.Member.Name == "b" && ev.Member.Meta.Active == 42
	})
	if ev.Member.Meta.FreeDiskBytes != 1<<33 {
		t.Errorf("update event meta = %+v", ev.Member.Meta)
	}
	if m, _ := a.Member("b"); m.Meta.Active != 42 {
		t.Errorf("a's table after the event: Active = %d, want 42", m.Meta.Active)
	}

	// Without Update, the refresh loop announces the change.
	b.setMeta(func(m *pool.Meta) { m.Active = 7 })
	waitEvent(t, events, 5*time.Second, "refreshed Active 7", func(ev pool.Event) bool {
		return ev.Type == pool.EventUpdate && ev.Member.Name == "b" && ev.Member.Meta.Active == 7
	})
}

func TestPick_ByCapacityOverGossip(t *testing.T) {
	t.Parallel()
	a := start(t, adapter("10.0.2.1:80"), nil, named("adapter"))
	seeds := []string{a.Self().Addr}
	r1 := start(t, recorder("10.0.2.2:7070", 10), seeds, named("r1"))
	r2 := start(t, recorder("10.0.2.3:7070", 40), seeds, named("r2"))
	r3 := start(t, recorder("10.0.2.4:7070", 1000), seeds, named("r3"))
	r3.setMeta(func(m *pool.Meta) { m.Draining = true })
	if err := r3.Update(); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, 4, a)
	callrectest.Eventually(t, 5*time.Second, "r3 seen draining", func() bool {
		m, _ := a.Member("r3")
		return m.Meta.Draining
	})

	if m, ok := a.Pick(pool.RoleRecorder, nil); !ok || m.Name != "r2" {
		t.Errorf("Pick = %q, %v; want r2 (most free, r3 draining)", m.Name, ok)
	}
	notR2 := func(m pool.Member) bool { return m.Name == "r2" }
	if m, ok := a.Pick(pool.RoleRecorder, notR2); !ok || m.Name != "r1" {
		t.Errorf("Pick excluding r2 = %q, %v; want r1", m.Name, ok)
	}
	if m, ok := a.Pick(pool.RoleMediaAdapter, nil); !ok || m.Name != "adapter" {
		t.Errorf("Pick(adapter) = %q, %v; want adapter", m.Name, ok)
	}
	// r2 fills up: now r1 is best, then nothing once both are full.
	r2.setMeta(func(m *pool.Meta) { m.Active = 40 })
	r1.setMeta(func(m *pool.Meta) { m.Active = 10 })
	_ = r1.Update()
	_ = r2.Update()
	callrectest.Eventually(t, 5*time.Second, "r1 and r2 seen full", func() bool {
		m1, _ := a.Member("r1")
		m2, _ := a.Member("r2")
		return m1.Meta.Active == 10 && m2.Meta.Active == 40
	})
	if m, ok := a.Pick(pool.RoleRecorder, nil); ok {
		t.Errorf("Pick with every recorder full or draining = %q, want none", m.Name)
	}
}

// TestPick_Spread: three recorders of equal capacity, 300 picks, each
// incrementing the chosen recorder's Active as an adapter's stream would.
func TestPick_Spread(t *testing.T) {
	t.Parallel()
	t.Run("one picker", func(t *testing.T) {
		t.Parallel()
		a := start(t, adapter("10.0.3.1:80"), nil, named("a"))
		recs := startRecorders(t, a.Self().Addr, "10.0.3")
		waitMembers(t, 4, a)
		counts := map[string]int{}
		for range 300 {
			m, ok := a.Pick(pool.RoleRecorder, nil)
			if !ok {
				t.Fatal("no recorder picked")
			}
			counts[m.Name]++
			recs[m.Name].addActive(t, 1)
		}
		checkSpread(t, counts, 300, 3)
	})
	// Three adapters pick at once from the same stale view (herding), ten
	// picks each per round; between rounds gossip catches up, as it does
	// between bursts of calls. (In one uninterrupted burst at ~1000 picks/s
	// the picks others made since the last announcement are invisible, and
	// the spread is only within about 20 %.)
	t.Run("three pickers at once", func(t *testing.T) {
		t.Parallel()
		a := start(t, adapter("10.0.4.1:80"), nil, named("a1"))
		seeds := []string{a.Self().Addr}
		pickers := []*node{a, start(t, adapter("10.0.4.2:80"), seeds, named("a2")), start(t, adapter("10.0.4.3:80"), seeds, named("a3"))}
		recs := startRecorders(t, a.Self().Addr, "10.0.4")
		waitMembers(t, 6, pickers...)
		var mu sync.Mutex
		counts := map[string]int{}
		for round := range 10 {
			var wg sync.WaitGroup
			for _, p := range pickers {
				wg.Go(func() {
					for range 10 {
						m, ok := p.Pick(pool.RoleRecorder, nil)
						if !ok {
							t.Error("no recorder picked")
							return
						}
						recs[m.Name].addActive(t, 1)
						mu.Lock()
						counts[m.Name]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			callrectest.Eventually(t, 5*time.Second, fmt.Sprintf("round %d announced to every picker", round), func() bool {
				for name, r := range recs {
					r.mu.Lock()
					want := r.meta.Active
					r.mu.Unlock()
					for _, p := range pickers {
						if m, _ := p.Member(name); m.Meta.Active != want {
							return false
						}
					}
				}
				return true
			})
		}
		checkSpread(t, counts, 300, 3)
	})
}

func startRecorders(tb testing.TB, seed, net3 string) map[string]*node {
	recs := map[string]*node{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("rec-%s-%d", net3, i)
		recs[name] = start(tb, recorder(fmt.Sprintf("%s.%d:7070", net3, 10+i), 1000), []string{seed}, named(name))
	}
	return recs
}

// checkSpread fails unless each of n members got within 10 % of total/n.
func checkSpread(tb testing.TB, counts map[string]int, total, n int) {
	tb.Helper()
	if len(counts) != n {
		tb.Fatalf("picks went to %d members, want %d: %v", len(counts), n, counts)
	}
	tb.Logf("picks: %v", counts)
	mean := float64(total) / float64(n)
	for name, c := range counts {
		if d := float64(c) - mean; d > mean/10 || d < -mean/10 {
			tb.Errorf("%s got %d picks of %d, more than 10 %% from %.0f: %v", name, c, total, mean, counts)
		}
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	op := start(t, pool.Meta{Role: pool.RoleCLI}, nil, named("operator"))
	seeds := []string{op.Self().Addr}
	r1 := start(t, recorder("10.0.5.2:7070", 1000), seeds, named("r1"))
	r2 := start(t, recorder("10.0.5.3:7070", 100), seeds, named("r2"))
	waitMembers(t, 3, op, r1, r2)
	events, cancel := op.Subscribe()
	defer cancel()

	ctx, cancelCtx := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCtx()
	if err := op.Drain(ctx, "r1"); err != nil {
		t.Fatalf("Drain(r1) = %v", err)
	}
	if got := r1.drains.Load(); got != 1 {
		t.Errorf("r1 OnDrain calls = %d, want 1", got)
	}
	if got := r2.drains.Load(); got != 0 {
		t.Errorf("r2 OnDrain calls = %d, want 0", got)
	}
	waitEvent(t, events, 5*time.Second, "r1 draining", func(ev pool.Event) bool {
		return ev.Member.Name == "r1" && ev.Member.Meta.Draining
	})
	for range 20 {
		if m, ok := op.Pick(pool.RoleRecorder, nil); !ok || m.Name != "r2" {
			t.Fatalf("Pick after draining r1 = %q, %v; want r2", m.Name, ok)
		}
	}
	if !r1.Self().Meta.Draining {
		t.Error("r1 does not announce Draining itself")
	}
	// Again: acknowledged, OnDrain not called twice.
	if err := op.Drain(ctx, "r1"); err != nil {
		t.Errorf("second Drain(r1) = %v", err)
	}
	if got := r1.drains.Load(); got != 1 {
		t.Errorf("r1 OnDrain calls after a second drain = %d, want 1", got)
	}
	if err := op.Drain(ctx, "no-such-node"); !errors.Is(err, pool.ErrUnknownMember) {
		t.Errorf("Drain(unknown) = %v, want ErrUnknownMember", err)
	}
}

func TestDrain_NotAcknowledged(t *testing.T) {
	t.Parallel()
	op := start(t, pool.Meta{Role: pool.RoleCLI}, nil, named("operator"))
	r := start(t, recorder("10.0.6.2:7070", 10), []string{op.Self().Addr}, named("r"))
	waitMembers(t, 2, op, r)
	// r crashes; op still lists it for the seconds failure detection takes.
	if err := r.Shutdown(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := op.Drain(ctx, "r")
	if errors.Is(err, pool.ErrUnknownMember) {
		t.Skip("r was declared dead before the drain; nothing to test")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not acknowledged") {
		t.Errorf("Drain(crashed member) = %v, want a not-acknowledged timeout", err)
	}
}

func TestDead_NeverPicked(t *testing.T) {
	t.Parallel()
	a := start(t, adapter("10.0.7.1:80"), nil, named("a"))
	seeds := []string{a.Self().Addr}
	big := start(t, recorder("10.0.7.2:7070", 1000), seeds, named("big"))
	start(t, recorder("10.0.7.3:7070", 100), seeds, named("small"))
	start(t, adapter("10.0.7.4:80"), seeds, named("other")) // a third prober
	waitMembers(t, 4, a)
	events, cancel := a.Subscribe()
	defer cancel()
	if m, _ := a.Pick(pool.RoleRecorder, nil); m.Name != "big" {
		t.Fatalf("Pick before the crash = %q, want big", m.Name)
	}

	began := time.Now()
	if err := big.Shutdown(); err != nil { // no Leave: a crash
		t.Fatal(err)
	}
	ev := waitEvent(t, events, 20*time.Second, "big dead", func(ev pool.Event) bool {
		return ev.Member.Name == "big" && ev.Type != pool.EventUpdate
	})
	if ev.Type != pool.EventDead || ev.Member.State != pool.StateDead {
		t.Errorf("event for the crashed member = %s/%s, want dead", ev.Type, ev.Member.State)
	}
	t.Logf("crash seen as dead after %v", time.Since(began).Round(time.Millisecond))
	for range 50 {
		if m, ok := a.Pick(pool.RoleRecorder, nil); !ok || m.Name != "small" {
			t.Fatalf("Pick after the crash = %q, %v; want small", m.Name, ok)
		}
	}
	for _, m := range a.Members() {
		if m.Name == "big" {
			t.Errorf("Members() still lists the dead member")
		}
	}
	if m, ok := a.Member("big"); !ok || m.State != pool.StateDead {
		t.Errorf("Member(big) = %+v, %v; want remembered as dead", m, ok)
	}
}

func TestLeave_SeenAsLeft(t *testing.T) {
	t.Parallel()
	a := start(t, adapter("10.0.8.1:80"), nil, named("a"))
	b := start(t, recorder("10.0.8.2:7070", 10), []string{a.Self().Addr}, named("b"))
	waitMembers(t, 2, a, b)
	events, cancel := a.Subscribe()
	defer cancel()
	bEvents, _ := b.Subscribe()

	began := time.Now()
	if err := b.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave = %v", err)
	}
	ev := waitEvent(t, events, 5*time.Second, "b leaving", func(ev pool.Event) bool {
		return ev.Member.Name == "b" && (ev.Type == pool.EventLeave || ev.Type == pool.EventDead)
	})
	if ev.Type != pool.EventLeave || ev.Member.State != pool.StateLeft {
		t.Errorf("event = %s/%s, want leave/left", ev.Type, ev.Member.State)
	}
	t.Logf("leave seen after %v", time.Since(began).Round(time.Millisecond))
	if _, ok := a.Pick(pool.RoleRecorder, nil); ok {
		t.Error("picked a recorder after the only one left")
	}
	// The leaver's subscriptions are closed; a second Leave is harmless.
	for range bEvents {
	}
	if err := b.Leave(time.Second); err != nil {
		t.Errorf("second Leave = %v", err)
	}
}

func TestSecretKey(t *testing.T) {
	t.Parallel()
	key := func(s string) func(*pool.Config) {
		return func(c *pool.Config) {
			k, err := pool.ParseSecretKey(s)
			if err != nil {
				t.Fatal(err)
			}
			c.SecretKey = k
		}
	}
	extra := func(s string) func(*pool.Config) {
		return func(c *pool.Config) {
			k, _ := pool.ParseSecretKey(s)
			c.ExtraKeys = append(c.ExtraKeys, k)
		}
	}
	k1, k2 := pool.NewSecretKey(), pool.NewSecretKey()
	// Mid-rotation: everyone accepts k1 and k2; "rotated" already sends with
	// k2, the others still with k1.
	a := start(t, recorder("10.0.9.1:7070", 10), nil, named("a"), key(k1), extra(k2))
	seeds := []string{a.Self().Addr}
	good := start(t, adapter("10.0.9.2:80"), seeds, named("good"), key(k1), extra(k2))
	rotated := start(t, adapter("10.0.9.5:80"), seeds, named("rotated"), key(k2), extra(k1))
	wrong := start(t, adapter("10.0.9.3:80"), seeds, named("wrong-key"), key(pool.NewSecretKey()))
	none := start(t, adapter("10.0.9.4:80"), seeds, named("no-key"))
	staging := start(t, adapter("10.0.9.6:80"), seeds, named("staging"), key(k1),
		func(c *pool.Config) { c.Cluster = "staging" })

	for _, n := range []*node{good, rotated} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.WaitJoined(ctx); err != nil {
			t.Fatalf("%s: %v", n.Name(), err)
		}
		cancel()
	}
	// They keep retrying in the background; give them a few attempts.
	var wg sync.WaitGroup
	for _, n := range []*node{wrong, none, staging} {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			if err := n.WaitJoined(ctx); err == nil {
				t.Errorf("%s joined a pool with another key", n.Name())
			} else {
				t.Logf("%s: %v", n.Name(), err)
			}
		})
	}
	wg.Wait()
	waitMembers(t, 3, a, good, rotated)
	if got := memberNames(a.Members()); strings.Join(got, ",") != "a,good,rotated" {
		t.Errorf("members of the keyed pool = %v, want a,good,rotated", got)
	}
	if got := len(wrong.Members()); got != 1 {
		t.Errorf("the wrong-key member sees %d members, want only itself", got)
	}
	// Wrong key or none: drains cannot reach keyed members either.
	if err := wrong.Drain(context.Background(), "a"); !errors.Is(err, pool.ErrUnknownMember) {
		t.Errorf("drain from outside = %v, want ErrUnknownMember", err)
	}
}

func TestSeed_DNSName(t *testing.T) {
	t.Parallel()
	a := start(t, recorder("10.0.10.1:7070", 10), nil, named("a"))
	_, port, _ := net.SplitHostPort(a.Self().Addr)
	b := start(t, adapter("10.0.10.2:80"), []string{"localhost:" + port}, named("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitJoined(ctx); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, 2, a, b)
}

func TestJoin_BeforeSeed(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b := start(t, adapter("10.0.11.2:80"), []string{seed}, named("early"))
	if b.Joined() {
		t.Fatal("joined with no seed up")
	}
	a := start(t, recorder("10.0.11.1:7070", 10), nil, named("seed"), func(c *pool.Config) { c.BindPort = port })
	events, cancel := a.Subscribe()
	defer cancel()
	ctx, cancelCtx := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCtx()
	if err := b.WaitJoined(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Member("early"); !ok {
		waitEvent(t, events, 5*time.Second, "early joining", func(ev pool.Event) bool {
			return ev.Type == pool.EventJoin && ev.Member.Name == "early"
		})
	}
	waitMembers(t, 2, a, b)
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 (memberlist
// binds both).
func freePort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	tb.Fatal("no port free for TCP and UDP")
	return 0
}

func TestMeta_TooLarge(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", pool.MetaMaxSize)
	_, err := pool.Join(context.Background(), pool.Config{
		Name: "huge", BindAddr: "127.0.0.1", Fast: true,
		Meta: func() pool.Meta { return recorder(huge, 1) },
	})
	if !errors.Is(err, pool.ErrInvalidMeta) {
		t.Fatalf("Join with oversize meta = %v, want ErrInvalidMeta", err)
	}
	t.Logf("Join: %v", err)

	// A running member whose meta grows too large keeps its last good one.
	reg := prometheus.NewRegistry()
	a := start(t, adapter("10.0.12.1:80"), nil, named("a"))
	b := start(t, recorder("10.0.12.2:7070", 10), []string{a.Self().Addr}, named("b"),
		func(c *pool.Config) { c.Registerer = reg })
	waitMembers(t, 2, a, b)
	b.setMeta(func(m *pool.Meta) { m.Addr = huge })
	if err := b.Update(); !errors.Is(err, pool.ErrInvalidMeta) {
		t.Errorf("Update with oversize meta = %v, want ErrInvalidMeta", err)
	}
	callrectest.Eventually(t, 5*time.Second, "refresh refuses the oversize meta", func() bool {
		return callrectest.Metric(t, reg, "callrec_pool_meta_announce_errors_total", nil) > 0
	})
	b.setMeta(func(m *pool.Meta) { m.Addr = "10.0.12.2:7071"; m.Active = 3 })
	if err := b.Update(); err != nil {
		t.Fatal(err)
	}
	callrectest.Eventually(t, 5*time.Second, "a sees b's next valid meta", func() bool {
		m, _ := a.Member("b")
		return m.Meta.Addr == "10.0.12.2:7071" && m.Meta.Active == 3
	})
}

func TestConfig_Invalid(t *testing.T) {
	t.Parallel()
	meta := func() pool.Meta { return pool.Meta{Role: pool.RoleCLI} }
	for name, cfg := range map[string]pool.Config{
		"no meta":        {BindAddr: "127.0.0.1"},
		"short key":      {BindAddr: "127.0.0.1", Meta: meta, SecretKey: []byte("short")},
		"bad seed port":  {BindAddr: "127.0.0.1", Meta: meta, Seeds: []string{"host:99999"}},
		"extra, no main": {BindAddr: "127.0.0.1", Meta: meta, ExtraKeys: [][]byte{make([]byte, 16)}},
	} {
		if p, err := pool.Join(context.Background(), cfg); err == nil {
			_ = p.Shutdown()
			t.Errorf("%s: Join accepted %+v", name, cfg)
		}
	}
}

func TestSubscribe_CancelAndMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := start(t, adapter("10.0.13.1:80"), nil, named("a"), func(c *pool.Config) { c.Registerer = reg })
	ch, cancel := a.Subscribe()
	start(t, recorder("10.0.13.2:7070", 10), []string{a.Self().Addr}, named("r"))
	waitEvent(t, ch, 10*time.Second, "r joining", func(ev pool.Event) bool {
		return ev.Type == pool.EventJoin && ev.Member.Name == "r"
	})
	cancel()
	cancel()       // idempotent
	for range ch { // closed after cancel
	}
	if got := callrectest.Metric(t, reg, "callrec_pool_members", map[string]string{"role": "recorder", "state": "alive"}); got != 1 {
		t.Errorf("members{recorder,alive} = %v, want 1", got)
	}
	if got := callrectest.Metric(t, reg, "callrec_pool_events_total", map[string]string{"type": "join"}); got < 2 {
		t.Errorf("events_total{join} = %v, want ≥ 2 (self and r)", got)
	}
}
