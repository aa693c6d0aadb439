package pool

import (
	"log/slog"
	"math"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// tablePool is a Pool with a hand-made member table and no network.
func tablePool(name string, metas map[string]Meta) *Pool {
	p := &Pool{cfg: Config{Name: name, RefreshInterval: time.Hour}, members: make(map[string]*entry)}
	for n, m := range metas {
		p.members[n] = &entry{m: Member{Name: n, Meta: m, State: StateAlive}}
	}
	return p
}

func TestPick_Ranking(t *testing.T) {
	rec := func(capacity, active int) Meta {
		return Meta{Role: RoleRecorder, Capacity: capacity, Active: active}
	}
	tests := []struct {
		name    string
		members map[string]Meta
		dead    string // a member marked dead
		exclude string
		want    string // "" for no pick
	}{
		{"most free capacity", map[string]Meta{"a": rec(10, 5), "b": rec(10, 2), "c": rec(100, 99)}, "", "", "b"},
		{"free beats ratio", map[string]Meta{"a": rec(100, 50), "b": rec(10, 0)}, "", "", "a"},
		{"full skipped", map[string]Meta{"a": rec(10, 10), "b": rec(10, 11)}, "", "", ""},
		{"draining skipped", map[string]Meta{"a": {Role: RoleRecorder, Capacity: 1000, Draining: true}, "b": rec(10, 9)}, "", "", "b"},
		{"dead skipped", map[string]Meta{"a": rec(1000, 0), "b": rec(10, 9)}, "a", "", "b"},
		{"excluded skipped", map[string]Meta{"a": rec(1000, 0), "b": rec(10, 9)}, "", "a", "b"},
		{"other role skipped", map[string]Meta{"a": {Role: RoleMediaAdapter, Capacity: 1000}, "b": rec(10, 9)}, "", "", "b"},
		{"unknown capacity: fewest active", map[string]Meta{"a": rec(0, 7), "b": rec(0, 3), "c": rec(0, 4)}, "", "", "b"},
		{"unknown capacity is overflow", map[string]Meta{"a": rec(0, 0), "b": rec(10, 9)}, "", "", "b"},
		{"overflow when the capped are full", map[string]Meta{"a": rec(0, 50), "b": rec(10, 10)}, "", "", "a"},
		{"huge numbers", map[string]Meta{"a": rec(math.MaxInt, math.MaxInt-1), "b": rec(0, math.MaxInt)}, "", "", "a"},
		{"undecodable meta never picked", map[string]Meta{"a": {}}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tablePool("adapter-1", tt.members)
			if tt.dead != "" {
				p.members[tt.dead].m.State = StateDead
			}
			got, ok := p.Pick(RoleRecorder, func(m Member) bool { return m.Name == tt.exclude })
			if got.Name != tt.want || ok != (tt.want != "") {
				t.Errorf("Pick = %q, %v; want %q", got.Name, ok, tt.want)
			}
		})
	}
}

func TestPick_CLINeverPicked(t *testing.T) {
	p := tablePool("x", map[string]Meta{"op": {Role: RoleCLI, Capacity: 10}})
	if m, ok := p.Pick(RoleCLI, nil); ok {
		t.Errorf("Pick(RoleCLI) = %q, want none", m.Name)
	}
}

// TestPick_OwnPicksCounted: with a view that never changes (gossip far
// behind), one picker still spreads evenly and respects Capacity.
func TestPick_OwnPicksCounted(t *testing.T) {
	p := tablePool("adapter-1", map[string]Meta{
		"r1": {Role: RoleRecorder, Capacity: 100},
		"r2": {Role: RoleRecorder, Capacity: 100, Active: 30},
		"r3": {Role: RoleRecorder, Capacity: 100, Active: 60},
	})
	counts := map[string]int{}
	for range 210 {
		m, ok := p.Pick(RoleRecorder, nil)
		if !ok {
			t.Fatal("Pick found nothing before the pool was full")
		}
		counts[m.Name]++
	}
	// Final loads are 100, 100, 100: r1 took 100, r2 70, r3 40.
	if counts["r1"] != 100 || counts["r2"] != 70 || counts["r3"] != 40 {
		t.Errorf("picks = %v, want r1:100 r2:70 r3:40", counts)
	}
	if m, ok := p.Pick(RoleRecorder, nil); ok {
		t.Errorf("Pick on a full pool = %q, want none", m.Name)
	}
	// Own picks are forgotten once they should have been announced.
	for _, e := range p.members {
		for i := range e.picks {
			e.picks[i] = e.picks[i].Add(-3 * time.Hour)
		}
	}
	if _, ok := p.Pick(RoleRecorder, nil); !ok {
		t.Error("stale own picks still counted")
	}
}

// TestPick_TieBreakSpreadsPickers: pickers that see the same equal loads do
// not all choose the same member first, yet each picker is deterministic.
func TestPick_TieBreakSpreadsPickers(t *testing.T) {
	metas := map[string]Meta{
		"rec-1": {Role: RoleRecorder}, "rec-2": {Role: RoleRecorder}, "rec-3": {Role: RoleRecorder},
	}
	first := map[string]int{}
	for i := range 30 {
		name := "adapter-" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		m1, _ := tablePool(name, metas).Pick(RoleRecorder, nil)
		m2, _ := tablePool(name, metas).Pick(RoleRecorder, nil)
		if m1.Name != m2.Name {
			t.Fatalf("picker %s chose %s then %s from the same view", name, m1.Name, m2.Name)
		}
		first[m1.Name]++
	}
	for _, n := range []string{"rec-1", "rec-2", "rec-3"} {
		if first[n] < 4 {
			t.Errorf("first picks of 30 pickers = %v; %s chosen %d times, want spread", first, n, first[n])
		}
	}
}

func TestEncodeMeta_RoundTrip(t *testing.T) {
	if got := stringBudget(); got != MetaStringBudget {
		t.Fatalf("MetaStringBudget = %d, but the encoding leaves %d", MetaStringBudget, got)
	}
	m := Meta{
		Role: RoleRecorder, Version: "v1", Addr: "10.0.0.7:7070", HTTPAddr: "10.0.0.7:8080",
		RecorderNode: 7, Capacity: 200, Active: 13, FreeDiskBytes: 1 << 40,
		Started: time.Date(2025, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600)),
	}
	b, err := encodeMeta(wireMeta{Meta: m})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MetaMaxSize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	w, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	got := w.Meta
	if w.Leaving || w.At != 0 {
		t.Errorf("pool flags decoded as %+v", w)
	}
	if !got.Started.Equal(m.Started) {
		t.Errorf("Started = %v, want %v", got.Started, m.Started)
	}
	got.Started = m.Started
	if got != m {
		t.Errorf("round trip = %+v, want %+v", got, m)
	}
	// The widest meta that validates encodes to exactly the limit.
	wm := m.worstCase()
	wm.Role = RoleConsolidation
	wm.Version = string(repeatByte('v', 32))
	wm.Addr = string(repeatByte('a', 200))
	wm.HTTPAddr = string(repeatByte('h', MetaStringBudget-232))
	b, err = encodeMeta(wireMeta{Meta: wm, Leaving: true, At: math.MinInt64})
	if err != nil || len(b) != MetaMaxSize {
		t.Errorf("widest meta encodes to %d bytes, %v; want exactly %d", len(b), err, MetaMaxSize)
	}
	// Escaping counts: NULs take six bytes each.
	wm.HTTPAddr = string(make([]byte, MetaStringBudget-232))
	if _, err := encodeMeta(wireMeta{Meta: wm, Leaving: true, At: math.MinInt64}); err == nil {
		t.Error("meta whose escapes overflow the limit was encoded")
	}
}

func repeatByte(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// observed builds a memberlist node carrying w, as the delegate receives it.
func observed(t *testing.T, name string, w wireMeta) *memberlist.Node {
	t.Helper()
	b, err := encodeMeta(w)
	if err != nil {
		t.Fatal(err)
	}
	return &memberlist.Node{Name: name, Addr: net.IPv4(10, 0, 0, 9), Port: 7946, Meta: b}
}

func TestObserve(t *testing.T) {
	p := tablePool("adapter-1", nil)
	p.subs = make(map[*subscriber]struct{})
	p.badMeta = make(map[string]bool)
	p.log = slog.New(slog.DiscardHandler)
	p.met, _ = newMetrics(nil, p)
	events, cancel := p.Subscribe()
	defer cancel()
	next := func() Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	d := &delegate{p: p}
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	meta := Meta{Role: RoleRecorder, Capacity: 10, Active: 1, Started: start}
	t0 := time.Now().Add(-time.Minute) // stamps in the past, as they arrive

	d.NotifyJoin(observed(t, "r", wireMeta{Meta: meta, At: t0.UnixNano()}))
	if ev := next(); ev.Type != EventJoin || ev.Member.Addr != "10.0.0.9:7946" || ev.Member.Meta.Active != 1 {
		t.Fatalf("join event = %+v", ev)
	}

	// Own picks before an announcement's stamp are in its Active; later ones
	// are not. A stamp from the future counts as now.
	e := p.members["r"]
	e.picks = []time.Time{t0.Add(time.Millisecond), t0.Add(3 * time.Millisecond), t0.Add(time.Hour)}
	// A repeat of the same metadata with a new stamp: no event, picks cut.
	d.NotifyUpdate(observed(t, "r", wireMeta{Meta: meta, At: t0.Add(2 * time.Millisecond).UnixNano()}))
	if got := len(e.picks); got != 2 {
		t.Errorf("own picks after a stamp between them = %d, want 2", got)
	}
	meta.Active = 2
	d.NotifyUpdate(observed(t, "r", wireMeta{Meta: meta, At: t0.Add(24 * time.Hour).UnixNano()}))
	if ev := next(); ev.Type != EventUpdate || ev.Member.Meta.Active != 2 {
		t.Fatalf("event after a silent repeat = %+v, want the update to Active 2", ev)
	}
	if got := len(e.picks); got != 1 {
		t.Errorf("own picks after a future stamp = %d, want 1 (only the one after now)", got)
	}

	// memberlist says alive in NotifyLeave whatever happened; Leaving tells.
	d.NotifyLeave(observed(t, "r", wireMeta{Meta: meta, Leaving: true}))
	if ev := next(); ev.Type != EventLeave || ev.Member.State != StateLeft {
		t.Errorf("leave with Leaving = %s/%s, want leave/left", ev.Type, ev.Member.State)
	}
	d.NotifyJoin(observed(t, "r", wireMeta{Meta: meta}))
	if ev := next(); ev.Type != EventJoin || ev.Member.State != StateAlive {
		t.Errorf("rejoin = %s/%s, want join/alive", ev.Type, ev.Member.State)
	}
	d.NotifyLeave(observed(t, "r", wireMeta{Meta: meta}))
	if ev := next(); ev.Type != EventDead || ev.Member.State != StateDead {
		t.Errorf("leave without Leaving = %s/%s, want dead/dead", ev.Type, ev.Member.State)
	}

	// Undecodable metadata: visible, never picked.
	d.NotifyJoin(&memberlist.Node{Name: "alien", Addr: net.IPv4(10, 0, 0, 8), Port: 1, Meta: []byte("{not json")})
	if ev := next(); ev.Member.Name != "alien" || ev.Member.Meta.Role != "" {
		t.Errorf("alien event = %+v", ev)
	}
	if len(p.Members()) != 1 {
		t.Errorf("Members() = %v, want the alien only", p.Members())
	}
}
