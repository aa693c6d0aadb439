package tracker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/tracker"
)

// outcome is what one arrival order produced.
type outcome struct {
	decisions []tracker.Decision
	contact   callrec.Contact
}

// replay applies events in the given order to a fresh state.
func replay(t *testing.T, rules tracker.Rules, events []callrec.CTIEvent, order []int) outcome {
	t.Helper()
	s := tracker.NewState(rules)
	var out outcome
	for _, i := range order {
		out.decisions = append(out.decisions, s.Apply(events[i])...)
	}
	c, ok := s.Contact(taskSID)
	if !ok {
		t.Fatalf("order %v: no contact", order)
	}
	out.contact = c
	return out
}

// keyCounts is the multiset of decision keys.
func keyCounts(ds []tracker.Decision) map[string]int {
	m := make(map[string]int)
	for _, d := range ds {
		m[d.Key]++
	}
	return m
}

// wantKeys is the multiset of keys of a scenario's real order, plus one
// more generation if the order resumes.
func wantKeys(sc scenario, resumed bool) map[string]int {
	m := make(map[string]int)
	gens := 0
	for _, w := range sc.want {
		m[key(w.kind, w.gen)]++
		gens = max(gens, w.gen)
	}
	if resumed {
		m[key(tracker.StartStream, gens+1)]++
		m[key(tracker.StopStream, gens+1)]++
	}
	return m
}

func key(kind tracker.DecisionKind, gen int) string {
	name := "rec-" + taskSID
	if gen > 1 {
		name += "-" + strconv.Itoa(gen)
	}
	return string(kind) + ":" + name + ":" + strconv.Itoa(gen)
}

// checkWellFormed checks the decision stream of one order: keys unique,
// generations numbered from 1 and started in turn, each stopped after its
// start, at most one running at a time (a late pair, a Start immediately
// followed by its Stop, runs nothing), none running at the end.
func checkWellFormed(ds []tracker.Decision) error {
	seen := make(map[string]bool)
	running, started := 0, 0
	for i, d := range ds {
		if d.Reason == tracker.ReasonLate {
			if d.Kind == tracker.StopStream {
				continue // checked with its start
			}
			if i+1 == len(ds) || ds[i+1].Kind != tracker.StopStream || ds[i+1].Name != d.Name ||
				ds[i+1].Reason != tracker.ReasonLate {
				return fmt.Errorf("late start %s without its stop", d.Key)
			}
			if seen[d.Key] || seen[ds[i+1].Key] {
				return fmt.Errorf("key %s twice", d.Key)
			}
			seen[d.Key], seen[ds[i+1].Key] = true, true
			if !strings.HasSuffix(d.Key, ":"+strconv.Itoa(started+1)) {
				return fmt.Errorf("%s after %d generations", d.Key, started)
			}
			started++
			continue
		}
		if seen[d.Key] {
			return fmt.Errorf("key %s twice", d.Key)
		}
		seen[d.Key] = true
		gen, err := strconv.Atoi(d.Key[strings.LastIndex(d.Key, ":")+1:])
		if err != nil {
			return fmt.Errorf("key %s: %v", d.Key, err)
		}
		switch d.Kind {
		case tracker.StartStream:
			if running != 0 {
				return fmt.Errorf("%s while generation %d runs", d.Key, running)
			}
			if gen != started+1 {
				return fmt.Errorf("%s after %d generations", d.Key, started)
			}
			started, running = gen, gen
		case tracker.StopStream:
			if gen != running {
				return fmt.Errorf("%s while generation %d runs", d.Key, running)
			}
			running = 0
		}
	}
	if running != 0 {
		return fmt.Errorf("generation %d still running at the end", running)
	}
	return nil
}

// checker replays orders of one scenario and compares them with it.
type checker struct {
	sc          scenario
	wantContact []byte // JSON of sc.contact: a fast comparison, cmp explains
}

func newChecker(t *testing.T, sc scenario) *checker {
	b, err := json.Marshal(sc.contact)
	if err != nil {
		t.Fatal(err)
	}
	return &checker{sc: sc, wantContact: b}
}

// check replays one order and reports whether it resumed.
func (c *checker) check(t *testing.T, order []int) (resumed bool) {
	t.Helper()
	sc := c.sc
	got := replay(t, sc.rules, sc.events, order)
	b, err := json.Marshal(got.contact)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, c.wantContact) {
		t.Fatalf("order %v: contact (-want +got):\n%s", order, cmp.Diff(sc.contact, got.contact))
	}
	if err := checkWellFormed(got.decisions); err != nil {
		t.Fatalf("order %v: %v\n%v", order, err, got.decisions)
	}
	resumed = sc.resumes != nil && sc.resumes(order)
	if want, keys := wantKeys(sc, resumed), keyCounts(got.decisions); !maps.Equal(want, keys) {
		t.Fatalf("order %v (resumed %v): keys (-want +got):\n%s\n%v",
			order, resumed, cmp.Diff(want, keys), got.decisions)
	}
	return resumed
}

// TestPermutations is the order-independence test: every order of each
// scenario's events (all of them up to 8 events, else 5000 random ones),
// and random orders with duplicates inserted, give the same final Contact
// and the same multiset of decision keys (see the package doc for the one
// documented exception, checked exactly through scenario.resumes).
func TestPermutations(t *testing.T) {
	for i, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			n := len(sc.events)
			c := newChecker(t, sc)
			rng := rand.New(rand.NewPCG(20250603, uint64(i)))
			orders, resumed := 0, 0
			count := func(r bool) {
				orders++
				if r {
					resumed++
				}
			}
			if n <= 8 {
				permute(identity(n), func(order []int) { count(c.check(t, order)) })
			} else {
				for range 5000 {
					count(c.check(t, rng.Perm(n)))
				}
			}
			for range 2000 {
				count(c.check(t, withDuplicates(rng, rng.Perm(n))))
			}
			t.Logf("%d events, %d orders, %d resumed", n, orders, resumed)
			if sc.resumes != nil && resumed == 0 {
				t.Errorf("no order exercised the resume exception")
			}
		})
	}
}

func identity(n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return order
}

// permute calls f with every permutation of a (Heap's algorithm); f must
// not keep its argument.
func permute(a []int, f func([]int)) {
	c := make([]int, len(a))
	f(a)
	for i := 0; i < len(a); {
		if c[i] < i {
			if i%2 == 0 {
				a[0], a[i] = a[i], a[0]
			} else {
				a[c[i]], a[i] = a[i], a[c[i]]
			}
			f(a)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

// withDuplicates inserts copies of random events at random places.
func withDuplicates(rng *rand.Rand, order []int) []int {
	extra := 1 + rng.IntN(len(order))
	for range extra {
		ev := order[rng.IntN(len(order))]
		at := rng.IntN(len(order) + 1)
		order = slices.Insert(order, at, ev)
	}
	return order
}

// TestPermuteCoversAll checks the permutation generator itself.
func TestPermuteCoversAll(t *testing.T) {
	seen := make(map[string]bool)
	permute(identity(5), func(o []int) { seen[fmt.Sprint(o)] = true })
	if len(seen) != 120 {
		t.Fatalf("%d distinct permutations of 5, want 120", len(seen))
	}
}
