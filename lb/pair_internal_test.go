package lb

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
)

func adapters(names ...string) []Backend {
	out := make([]Backend, len(names))
	for i, n := range names {
		out[i] = Backend{Name: n, URL: &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", 1000+i)}}
	}
	return out
}

func newTestLB(t *testing.T, bs ...Backend) (*LB, *staticView) {
	t.Helper()
	v := &staticView{}
	v.set(bs...)
	l, err := New(Config{Backends: v})
	if err != nil {
		t.Fatal(err)
	}
	return l, v
}

// place picks copy k of group and marks the attempt failed again, so the
// pick leaves no count behind.
func place(t *testing.T, l *LB, group string, k int, tried ...string) string {
	t.Helper()
	ch, ok := l.pick(tried, &pair{group: group, copy: k})
	if !ok {
		t.Fatalf("no adapter for copy %d of %s", k, group)
	}
	l.failed(ch)
	return ch.name
}

func groups(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("rec-WT%032x", i*7919+1)
	}
	return out
}

// TestPickPair_CopiesApart: on three adapters, copies 1 and 2 of 50 groups
// always land on different adapters, however loaded, and the groups spread
// over every adapter.
func TestPickPair_CopiesApart(t *testing.T) {
	bs := adapters("adapter-1", "adapter-2", "adapter-3")
	bs[0].Active = 500 // load plays no part in a pair's placement
	l, _ := newTestLB(t, bs...)
	firsts := map[string]int{}
	for _, g := range groups(50) {
		a, b := place(t, l, g, 1), place(t, l, g, 2)
		if a == b {
			t.Errorf("both copies of %s on %s", g, a)
		}
		firsts[a]++
	}
	for _, b := range bs {
		if firsts[b.Name] < 5 {
			t.Errorf("copy 1 of only %d of 50 groups on %s: %v", firsts[b.Name], b.Name, firsts)
		}
	}
}

// TestPickPair_InstancesAgree: two lbs, each with its own state and load
// counts and a view listing the adapters in another order, place every
// copy alike.
func TestPickPair_InstancesAgree(t *testing.T) {
	bs := adapters("a", "b", "c", "d")
	one, _ := newTestLB(t, bs...)
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	for i := range rev {
		rev[i].Active = 10 * i
	}
	two, _ := newTestLB(t, rev...)
	for range 7 { // the second lb carries connections of its own
		ch, _ := two.pick(nil, nil)
		two.established(&ch)
	}
	for _, g := range groups(50) {
		for k := 1; k <= 4; k++ {
			if a, b := place(t, one, g, k), place(t, two, g, k); a != b {
				t.Errorf("copy %d of %s: %s on one lb, %s on the other", k, g, a, b)
			}
		}
	}
}

// TestPickPair_AdapterLeaves: an adapter leaving moves only the pairs that
// had a copy on it, and a copy on an adapter that stays keeps it; the
// adapter coming back puts every pair where it was.
func TestPickPair_AdapterLeaves(t *testing.T) {
	l, v := newTestLB(t, adapters("a", "b", "c")...)
	before := map[string][2]string{}
	for _, g := range groups(50) {
		before[g] = [2]string{place(t, l, g, 1), place(t, l, g, 2)}
	}
	v.set(adapters("a", "c")...)
	moved := 0
	for g, was := range before {
		now := [2]string{place(t, l, g, 1), place(t, l, g, 2)}
		if now[0] == now[1] {
			t.Errorf("both copies of %s on %s after b left", g, now[0])
		}
		if was[0] != "b" && was[1] != "b" {
			if now != was {
				t.Errorf("%s had no copy on b but moved from %v to %v", g, was, now)
			}
			continue
		}
		moved++
		for i, a := range was {
			if a != "b" && now[i] != a && !slices.Contains(now[:], a) {
				t.Errorf("%s: copy %d left %s, which stayed", g, i+1, a)
			}
		}
	}
	if moved == 0 || moved == len(before) {
		t.Errorf("%d of %d pairs had a copy on b", moved, len(before))
	}
	v.set(adapters("a", "b", "c")...) // b comes back: everything as before
	for g, was := range before {
		if now := [2]string{place(t, l, g, 1), place(t, l, g, 2)}; now != was {
			t.Errorf("%s: %v after b came back, %v before it left", g, now, was)
		}
	}
}

// TestPickPair_WrapsAndSkips: with fewer adapters than the copy number the
// ranking wraps around; draining adapters and those already tried are not
// picked; failover walks the ranking.
func TestPickPair_WrapsAndSkips(t *testing.T) {
	bs := adapters("a", "b", "c")
	l, v := newTestLB(t, bs...)
	const g = "rec-WT1"
	r := []string{place(t, l, g, 1), place(t, l, g, 2), place(t, l, g, 3)}
	if place(t, l, g, 4) != r[0] {
		t.Errorf("copy 4 of 3 adapters: want the first of the ranking %v", r)
	}
	if got := place(t, l, g, 1, r[0]); got != r[1] {
		t.Errorf("copy 1 after %s failed: %s, want the next in the ranking %v", r[0], got, r)
	}
	if got := place(t, l, g, 2, r[1]); got != r[2] {
		t.Errorf("copy 2 after %s failed: %s, want the next in the ranking %v", r[1], got, r)
	}
	if got := place(t, l, g, 3, r[2]); got != r[0] {
		t.Errorf("copy 3 after %s failed: %s, want the ranking wrapped to %s", r[2], got, r[0])
	}
	if _, ok := l.pick(r, &pair{group: g, copy: 1}); ok {
		t.Error("a pick with every adapter tried")
	}
	for i := range bs {
		bs[i].Draining = bs[i].Name == r[0]
	}
	v.set(bs...)
	if got := place(t, l, g, 1); got != r[1] {
		t.Errorf("copy 1 with %s draining: %s, want %s (ranking %v)", r[0], got, r[1], r)
	}
	v.set(adapters("solo")...)
	if a, b := place(t, l, g, 1), place(t, l, g, 2); a != "solo" || b != "solo" {
		t.Errorf("one adapter: copies on %s and %s", a, b)
	}
}

func TestParsePair(t *testing.T) {
	long := make([]byte, maxGroup+1)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		rest string
		want pair
		ok   bool
	}{
		{"rec-WT1/1", pair{"rec-WT1", 1}, true},
		{"rec-WT1-2/4", pair{"rec-WT1-2", 4}, true},
		{"a%20b%2Fc/2", pair{"a b/c", 2}, true},
		{string(long[:maxGroup]) + "/1", pair{string(long[:maxGroup]), 1}, true},
		{string(long) + "/1", pair{}, false},
		{"rec-WT1/5", pair{}, false},
		{"rec-WT1/0", pair{}, false},
		{"rec-WT1/01", pair{}, false},
		{"rec-WT1/+1", pair{}, false},
		{"rec-WT1/x", pair{}, false},
		{"rec-WT1/", pair{}, false},
		{"rec-WT1", pair{}, false},
		{"/1", pair{}, false},
		{"rec-WT1/1/", pair{}, false},
		{"rec-WT1/1/extra", pair{}, false},
		{"a%zzb/1", pair{}, false},
		{"", pair{}, false},
	}
	for _, tt := range tests {
		got, err := parsePair(tt.rest)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parsePair(%q) = %+v, %v; want %+v, ok %v", clip(tt.rest, 40), got, err, tt.want, tt.ok)
		}
	}
}
