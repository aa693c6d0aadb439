package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"callrec/eventadapter/bolt"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func seen(t *testing.T, s *bolt.Store, ids ...string) []bool {
	t.Helper()
	got, err := s.Seen(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func remember(t *testing.T, s *bolt.Store, at time.Time, ids ...string) {
	t.Helper()
	if err := s.Remember(context.Background(), ids, at); err != nil {
		t.Fatal(err)
	}
}

func TestSeenRememberBatch(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	if diff := cmp.Diff([]bool{false, false, false}, seen(t, s, "a", "b", "")); diff != "" {
		t.Errorf("fresh store (-want +got):\n%s", diff)
	}
	if got := seen(t, s); len(got) != 0 {
		t.Errorf("Seen(nil) = %v, want empty", got)
	}
	remember(t, s, t0, "a", "c", "a") // a duplicate inside a batch is one entry
	remember(t, s, t0)                // empty batch: no-op
	if diff := cmp.Diff([]bool{true, false, true, true}, seen(t, s, "a", "b", "c", "a")); diff != "" {
		t.Errorf("after Remember (-want +got):\n%s", diff)
	}
	if err := s.Remember(context.Background(), []string{"d", ""}, t0); err == nil {
		t.Error("Remember with an empty id: want error")
	}
	if diff := cmp.Diff([]bool{false}, seen(t, s, "d")); diff != "" {
		t.Errorf("a failed batch must remember nothing (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Seen(ctx, []string{"a"}); err == nil {
		t.Error("Seen with a done context: want error")
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	remember(t, s, t0, "ev-1", "ev-2")
	if err := s.SaveCheckpoint(ctx, "calls", "shardId-000000000001", "4960"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishShard(ctx, "calls", "shardId-000000000000"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path)
	if diff := cmp.Diff([]bool{true, true, false}, seen(t, s, "ev-1", "ev-2", "ev-3")); diff != "" {
		t.Errorf("ids after reopen (-want +got):\n%s", diff)
	}
	type cp struct {
		Seq      string
		Finished bool
	}
	var got []cp
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		seq, fin, err := s.Checkpoint(ctx, "calls", shard)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cp{seq, fin})
	}
	if diff := cmp.Diff([]cp{{"", true}, {"4960", false}}, got); diff != "" {
		t.Errorf("checkpoints after reopen (-want +got):\n%s", diff)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := context.Background()
	check := func(stream, shard, wantSeq string, wantFin bool) {
		t.Helper()
		seq, fin, err := s.Checkpoint(ctx, stream, shard)
		if err != nil {
			t.Fatal(err)
		}
		if seq != wantSeq || fin != wantFin {
			t.Errorf("Checkpoint(%s, %s) = %q, %v; want %q, %v", stream, shard, seq, fin, wantSeq, wantFin)
		}
	}
	check("s1", "sh0", "", false)
	for _, seq := range []string{"100", "205"} {
		if err := s.SaveCheckpoint(ctx, "s1", "sh0", seq); err != nil {
			t.Fatal(err)
		}
	}
	check("s1", "sh0", "205", false)
	check("s2", "sh0", "", false) // a bucket per stream
	if err := s.FinishShard(ctx, "s1", "sh0"); err != nil {
		t.Fatal(err)
	}
	check("s1", "sh0", "205", true)
	if err := s.SaveCheckpoint(ctx, "s1", "sh0", "300"); err != nil {
		t.Fatal(err)
	}
	check("s1", "sh0", "300", true) // finished stays finished
	if err := s.SaveCheckpoint(ctx, "", "sh0", "1"); err == nil {
		t.Error("SaveCheckpoint with an empty stream: want error")
	}
}

func TestEvictByAge(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	s.SetDedupeWindow(time.Hour, 0)
	remember(t, s, t0, "old-1", "old-2")
	remember(t, s, t0.Add(30*time.Minute), "mid")
	remember(t, s, t0.Add(50*time.Minute), "old-2") // refreshed: keeps the later time
	if diff := cmp.Diff([]bool{true, true, true}, seen(t, s, "old-1", "old-2", "mid")); diff != "" {
		t.Errorf("within the window (-want +got):\n%s", diff)
	}
	remember(t, s, t0.Add(61*time.Minute), "new")
	if diff := cmp.Diff([]bool{false, true, true, true}, seen(t, s, "old-1", "old-2", "mid", "new")); diff != "" {
		t.Errorf("after 61 min (-want +got):\n%s", diff)
	}
	remember(t, s, t0.Add(111*time.Minute), "newer")
	if diff := cmp.Diff([]bool{false, false, false, true, true}, seen(t, s, "old-1", "old-2", "mid", "new", "newer")); diff != "" {
		t.Errorf("after 111 min (-want +got):\n%s", diff)
	}
}

func TestEvictByCount(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	s.SetDedupeWindow(0, 5) // default age, at most 5 ids
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("ev-%d", i))
	}
	remember(t, s, t0, ids[0], ids[1])
	remember(t, s, t0.Add(time.Second), ids[2], ids[3], ids[4])
	remember(t, s, t0.Add(2*time.Second), ids[0]) // refresh: ev-0 becomes the newest
	if diff := cmp.Diff([]bool{true, true, true, true, true, false, false, false}, seen(t, s, ids...)); diff != "" {
		t.Errorf("at the limit (-want +got):\n%s", diff)
	}
	remember(t, s, t0.Add(3*time.Second), ids[5], ids[6]) // evicts the two oldest: ev-1, then ev-2
	want := []bool{true, false, false, true, true, true, true, false}
	if diff := cmp.Diff(want, seen(t, s, ids...)); diff != "" {
		t.Errorf("over the limit (-want +got):\n%s", diff)
	}
	// The count survives a reopen of the same file (kept in the index bucket).
	path := filepath.Join(t.TempDir(), "count.db")
	s2, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	remember(t, s2, t0, ids[:4]...)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s2 = openStore(t, path)
	s2.SetDedupeWindow(0, 4)
	remember(t, s2, t0.Add(time.Second), ids[4])
	if diff := cmp.Diff([]bool{false, true, true, true, true}, seen(t, s2, ids[:5]...)); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
}

func TestRememberLargeBatch(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	s.SetDedupeWindow(time.Hour, 1000)
	ids := make([]string, 1500)
	for i := range ids {
		ids[i] = fmt.Sprintf("EV%032d", i)
	}
	remember(t, s, t0, ids...) // one transaction; same time, so ties evict by id order
	got := seen(t, s, ids...)
	n := 0
	for _, ok := range got {
		if ok {
			n++
		}
	}
	if n != 1000 {
		t.Errorf("remembered %d ids, want 1000", n)
	}
	if got[0] || !got[len(got)-1] {
		t.Errorf("Seen(first, last) = %v, %v; want false, true", got[0], got[len(got)-1])
	}
}
