package lb_test

import (
	"maps"
	"sync"
	"testing"

	"callrec/internal/callrectest"
	"callrec/internal/ws"
	"callrec/lb"
)

// loadModel is the selection rule as the package doc states it: load =
// reported Active + this lb's connections since that report.
type loadModel struct {
	reported map[string]int
	own      map[string]int
}

// report is a new view: an adapter whose Active changed starts counting
// this lb's connections from zero again.
func (m *loadModel) report(active map[string]int) {
	for name, n := range active {
		if m.reported[name] != n {
			m.own[name] = 0
		}
	}
	m.reported = maps.Clone(active)
}

// check fails unless got is one of the least loaded, then counts it.
func (m *loadModel) check(t *testing.T, i int, got string) {
	t.Helper()
	least := -1
	for name := range m.reported {
		if l := m.reported[name] + m.own[name]; least < 0 || l < least {
			least = l
		}
	}
	if _, ok := m.reported[got]; !ok || m.reported[got]+m.own[got] != least {
		t.Fatalf("upgrade %d went to %q; loads %v + %v, least %d", i, got, m.reported, m.own, least)
	}
	m.own[got]++
}

// TestPick_LeastLoaded checks every choice against the rule, with fewer than
// 20 connections so the peer factor is 1 (TestPeerFactor covers it).
func TestPick_LeastLoaded(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	v := newView(a.backend(4), b.backend(1), c.backend(9))
	l := newLB(t, lb.Config{Backends: v})
	m := &loadModel{own: map[string]int{}}
	m.report(map[string]int{"a": 4, "b": 1, "c": 9})

	// Between reports the lb counts its own connections: b, b, b, then a
	// and b in turn; c stays the most loaded.
	conns := map[string][]*ws.Conn{}
	pick := func(i int) {
		conn, h := l.dial(t, "/media", nil)
		m.check(t, i, h.Backend)
		conns[h.Backend] = append(conns[h.Backend], conn)
	}
	for i := range 8 {
		pick(i)
	}
	if got := m.own; got["b"] < 3 || got["c"] != 0 {
		t.Fatalf("own connections %v: want b first and c untouched", got)
	}

	// A report arrives: a and b include this lb's connections, c's streams
	// ended. The lb's counts restart from it, so c now gets the next ones.
	next := map[string]int{"a": 4 + m.own["a"], "b": 1 + m.own["b"], "c": 0}
	v.set(a.backend(next["a"]), b.backend(next["b"]), c.backend(next["c"]))
	m.report(next)
	for i := range 5 {
		pick(8 + i)
	}
	if m.own["c"] != 5 {
		t.Fatalf("after the report c got %d of 5, want all", m.own["c"])
	}

	// A connection that ends before the next report no longer counts.
	before := l.Active()
	if err := conns["c"][0].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lb to count the closed connection gone", func() bool { return l.Active() == before-1 })
	m.own["c"]--
	for i := range 5 {
		pick(13 + i)
	}
	if got := callrectest.Metric(t, l.reg, "callrec_lb_picks_total", map[string]string{"backend": "c"}); got != float64(m.own["c"]+1) {
		t.Errorf("callrec_lb_picks_total{backend=c} = %v, want %d", got, m.own["c"]+1)
	}
}

// TestSpread opens 300 upgrades over 3 adapters and a draining one, and holds
// them open: each adapter must get 100 ± 10, the draining one none. The view
// reports the adapters' real counts every that many picks (0: never, a
// burst between two gossip updates); shares says how the upgrades in flight
// are split over the lbs.
func TestSpread(t *testing.T) {
	tests := []struct {
		name     string
		shares   []int
		every    int
		inflight int
	}{
		{"one lb, burst between reports", []int{1}, 0, 300},
		{"three lbs, burst between reports", []int{1, 1, 1}, 0, 300},
		{"one lb, a report every pick", []int{1}, 1, 30},
		{"three lbs, a report every 10 picks", []int{1, 1, 1}, 10, 30},
		// Plain least-connections herds here: every lb fills the same gap
		// (measured 16 to 29 off); the peer factor keeps it level.
		{"five lbs, a report every 100 picks", []int{1, 1, 1, 1, 1}, 100, 5},
		{"three lbs with shares 3:2:1, a report every 30 picks", []int{3, 2, 1}, 30, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := []*testBackend{newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")}
			drain := newBackend(t, "draining")
			v := newView(bs[0].backend(0), bs[1].backend(0), bs[2].backend(0),
				lb.Backend{Name: drain.name, URL: drain.url, Draining: true})
			if tt.every > 0 {
				v.reportLive(tt.every, bs...)
			}
			var lbs []*testLB // one entry per share
			for _, n := range tt.shares {
				l := newLB(t, lb.Config{Backends: v})
				for range n {
					lbs = append(lbs, l)
				}
			}

			const total = 300
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				got    = map[string]int{}
				failed []error
			)
			for w := range tt.inflight {
				l := lbs[w%len(lbs)]
				wg.Go(func() {
					for range total / tt.inflight {
						c, err := l.dialErr("/media", nil)
						if err == nil {
							t.Cleanup(func() { _ = c.Close() })
							var h hello
							h, err = readHelloErr(c)
							mu.Lock()
							got[h.Backend]++
							mu.Unlock()
						}
						if err != nil {
							mu.Lock()
							failed = append(failed, err)
							mu.Unlock()
							return
						}
					}
				})
			}
			wg.Wait()
			if len(failed) > 0 {
				t.Fatalf("%d of %d upgrades failed, first: %v", len(failed), total, failed[0])
			}
			for _, b := range bs {
				if n := got[b.name]; n < 90 || n > 110 {
					t.Errorf("backend %s got %d of %d upgrades, want 100 ± 10 (all: %v)", b.name, n, total, got)
				}
				if n := int(b.active.Load()); n != got[b.name] {
					t.Errorf("backend %s holds %d sockets, clients saw %d", b.name, n, got[b.name])
				}
			}
			if n := drain.upgrades.Load(); n != 0 {
				t.Errorf("draining backend got %d upgrades", n)
			}
			t.Logf("spread: %v", got)
		})
	}
}

// TestPick_BackendLeaves: an adapter that left the view gets no new
// connection, and its open one keeps working until it ends.
func TestPick_BackendLeaves(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	v := newView(a.backend(0), b.backend(10))
	l := newLB(t, lb.Config{Backends: v})

	ca, h := l.dial(t, "/media", nil)
	if h.Backend != "a" {
		t.Fatalf("first upgrade went to %q, want a (0 streams against 10)", h.Backend)
	}
	v.set(b.backend(10)) // a leaves: say a memberlist leave or a failed health check
	for i := range 5 {
		if _, h := l.dial(t, "/media", nil); h.Backend != "b" {
			t.Fatalf("upgrade %d after a left went to %q", i, h.Backend)
		}
	}
	echo(t, ca, false, []byte("still recording"))
	if got := callrectest.Metric(t, l.reg, "callrec_lb_connections_active", map[string]string{"backend": "a"}); got != 1 {
		t.Errorf("callrec_lb_connections_active{backend=a} = %v, want 1", got)
	}

	v.set() // nobody left: new upgrades are refused, a's stream still runs
	if status, _, body := l.request(t, "GET", "/media", wsHeaders()); status != 503 {
		t.Errorf("with an empty view: %d %q, want 503", status, body)
	}
	echo(t, ca, true, []byte("still recording"))
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's socket to close", func() bool { return a.active.Load() == 0 })
	if n := a.upgrades.Load(); n != 1 {
		t.Errorf("a accepted %d upgrades, want 1", n)
	}
}
