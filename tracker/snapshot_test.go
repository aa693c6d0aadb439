package tracker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec/tracker"
)

// roundTrip snapshots s, passes the snapshot through JSON, and restores it
// into a fresh state.
func roundTrip(t *testing.T, rules tracker.Rules, s *tracker.State) *tracker.State {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var back tracker.Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	restored := tracker.NewState(rules)
	if err := restored.Restore(back); err != nil {
		t.Fatal(err)
	}
	return restored
}

// TestSnapshotRoundTrip cuts every scenario at every point (in real order
// and in a scrambled one), restores a snapshot, and checks that the
// restored state continues exactly like the original.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, sc := range scenarios() {
		orders := map[string][]int{"real": identity(len(sc.events)), "reversed": reversed(len(sc.events))}
		for oname, order := range orders {
			for cut := 0; cut <= len(order); cut++ {
				orig := tracker.NewState(sc.rules)
				for _, i := range order[:cut] {
					orig.Apply(sc.events[i])
				}
				restored := roundTrip(t, sc.rules, orig)
				if diff := cmp.Diff(orig.Contacts(), restored.Contacts()); diff != "" {
					t.Fatalf("%s/%s cut %d: restored contacts (-orig +restored):\n%s", sc.name, oname, cut, diff)
				}
				for _, i := range order[cut:] {
					want, got := orig.Apply(sc.events[i]), restored.Apply(sc.events[i])
					if diff := cmp.Diff(want, got); diff != "" {
						t.Fatalf("%s/%s cut %d, event %d: decisions (-orig +restored):\n%s", sc.name, oname, cut, i, diff)
					}
				}
				c, _ := restored.Contact(taskSID)
				if diff := cmp.Diff(sc.contact, c); diff != "" {
					t.Fatalf("%s/%s cut %d: final contact (-want +got):\n%s", sc.name, oname, cut, diff)
				}
			}
		}
	}
}

func reversed(n int) []int {
	order := identity(n)
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// TestSnapshotOf: a snapshot of some tasks holds only those, and Restore
// adds them to a state.
func TestSnapshotOf(t *testing.T) {
	s := tracker.NewState(defaultRules)
	for _, ev := range answeredEvents().events[:3] {
		s.Apply(ev)
	}
	other := answeredEvents().events[0]
	other.TaskSID = "WT00000000000000000000000000000001"
	s.Apply(other)
	snap, err := s.Snapshot(taskSID, "WTunknown")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Contacts) != 1 || snap.Contacts[taskSID] == nil {
		t.Fatalf("snapshot holds %d contacts", len(snap.Contacts))
	}
	r := tracker.NewState(defaultRules)
	r.Apply(other)
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.Contacts(), r.Contacts()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRestoreErrors(t *testing.T) {
	s := tracker.NewState(defaultRules)
	for _, ev := range answeredEvents().events {
		s.Apply(ev)
	}
	good, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	raw := good.Contacts[taskSID]
	for _, tc := range []struct {
		name string
		snap tracker.Snapshot
		want string
	}{
		{"version", tracker.Snapshot{Version: 99}, "version"},
		{"not JSON", tracker.Snapshot{Version: tracker.SnapshotVersion,
			Contacts: map[string]json.RawMessage{taskSID: json.RawMessage(`{`)}}, "restore"},
		{"other task", tracker.Snapshot{Version: tracker.SnapshotVersion,
			Contacts: map[string]json.RawMessage{"WTother": raw}}, "holds task"},
		{"bad stream state", tracker.Snapshot{Version: tracker.SnapshotVersion,
			Contacts: map[string]json.RawMessage{taskSID: json.RawMessage(`{"task_sid":"` + taskSID + `","emit":{"gen":1,"running":2}}`)}}, "stream state"},
		{"null reservation", tracker.Snapshot{Version: tracker.SnapshotVersion,
			Contacts: map[string]json.RawMessage{taskSID: json.RawMessage(`{"task_sid":"` + taskSID + `","connections":{"WR1":null}}`)}}, "empty reservation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := tracker.NewState(defaultRules)
			err := fresh.Restore(tc.snap)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
			if n := len(fresh.Contacts()); n != 0 {
				t.Errorf("failed restore left %d contacts", n)
			}
		})
	}
}
