package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec/tracker"
)

// TestTombstones: retiring deletes the contact and leaves a tombstone that
// survives a reopen; retiring a task again replaces its tombstone; pruning
// deletes exactly the tombstones retired before the limit.
func TestTombstones(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracker.db")
	s := open(t, path)
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	for _, sid := range []string{"WT1", "WT2", "WT3"} {
		if err := s.PutContact(ctx, sid, []byte(`{"task_sid":"`+sid+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	retire := func(ts ...tracker.Tombstone) {
		t.Helper()
		if err := s.RetireContacts(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	one := tracker.Tombstone{TaskSID: "WT1", EndedAt: t0.Add(-time.Hour), RetiredAt: t0}
	two := tracker.Tombstone{TaskSID: "WT2", EndedAt: t0.Add(-time.Hour), RetiredAt: t0.Add(time.Hour)}
	retire(one, two)
	if cs, err := s.Contacts(ctx); err != nil || len(cs) != 1 || cs["WT3"] == nil {
		t.Fatalf("contacts after retiring WT1, WT2: %v, %v", cs, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	t.Cleanup(func() { s.Close() })
	got, ok, err := s.Tombstone(ctx, "WT1")
	if err != nil || !ok {
		t.Fatalf("Tombstone(WT1) = %v, %v", ok, err)
	}
	if diff := cmp.Diff(one, got); diff != "" {
		t.Errorf("tombstone after reopen (-want +got):\n%s", diff)
	}
	if _, ok, err := s.Tombstone(ctx, "WT3"); ok || err != nil {
		t.Errorf("Tombstone(WT3) = %v, %v; want none", ok, err)
	}

	// WT1 retired again later: its old index entry must not prune it.
	one.RetiredAt = t0.Add(3 * time.Hour)
	retire(one)
	if n, err := s.PruneTombstones(ctx, t0.Add(2*time.Hour)); n != 1 || err != nil {
		t.Fatalf("PruneTombstones = %d, %v; want WT2 only", n, err)
	}
	if _, ok, _ := s.Tombstone(ctx, "WT2"); ok {
		t.Error("WT2 not pruned")
	}
	if got, ok, _ := s.Tombstone(ctx, "WT1"); !ok || !got.RetiredAt.Equal(one.RetiredAt) {
		t.Errorf("WT1 after pruning: %+v, %v", got, ok)
	}
	if n, err := s.PruneTombstones(ctx, t0.Add(3*time.Hour+1)); n != 1 || err != nil {
		t.Fatalf("second PruneTombstones = %d, %v", n, err)
	}
	if n, err := s.PruneTombstones(ctx, t0.Add(24*time.Hour)); n != 0 || err != nil {
		t.Fatalf("PruneTombstones of nothing = %d, %v", n, err)
	}
}
