package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"callrec"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "interactions.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPutGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	g := genConfig{n: 10, agents: 3, queues: 2, dids: 2, end: benchBase, span: time.Hour, seed: 1}
	in := g.gen(3)
	in.Tags = []string{"vip"}
	if err := s.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, "WTnope"); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("Get missing: err = %v, want not_found", err)
	}
}

func TestPutDerivesIDAndRejects(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	start := benchBase
	in := Interaction{CallSID: "CA1", Start: start, End: start.Add(90 * time.Second), Status: StatusComplete}
	if err := s.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "call:CA1")
	if err != nil {
		t.Fatal(err)
	}
	if got.DurationMS != 90_000 {
		t.Errorf("DurationMS = %d, want 90000", got.DurationMS)
	}
	for _, bad := range []Interaction{{}, {ID: "x", Agents: []string{"a\x00b"}}} {
		if err := s.Put(ctx, bad); callrec.ErrorCode(err) != callrec.EINVALID {
			t.Errorf("Put(%+v) err = %v, want invalid", bad, err)
		}
	}
}

// countKeys counts the keys of an index bucket.
func countKeys(t *testing.T, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpsertMovesIndexEntries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	g := genConfig{n: 10, agents: 3, queues: 2, dids: 2, end: benchBase, span: time.Hour, seed: 2}
	in := g.gen(1)
	in.Agents, in.Tags, in.From = []string{"2001"}, []string{"vip"}, "+15550001111"
	if err := s.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, b := range allBuckets {
		before[string(b)] = countKeys(t, s, b)
	}
	moved := in
	moved.Agents = []string{"2002"}
	moved.Start = in.Start.Add(-48 * time.Hour)
	moved.From = "+15550002222"
	moved.Tags = []string{"sales"}
	moved.Status = StatusInterrupted
	// PutMany with a duplicate: the last occurrence wins.
	if err := s.PutMany(ctx, []Interaction{in, moved}); err != nil {
		t.Fatal(err)
	}
	for _, b := range allBuckets {
		if got := countKeys(t, s, b); got != before[string(b)] {
			t.Errorf("bucket %s: %d keys after upsert, want %d", b, got, before[string(b)])
		}
	}
	ids := func(q Query) []string {
		t.Helper()
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range res.Items {
			out = append(out, it.ID)
		}
		return out
	}
	near := Query{From: in.Start.Add(-time.Minute), To: in.Start.Add(time.Minute)}
	for name, q := range map[string]Query{
		"old agent": {Agent: "2001"}, "old tag": {Tags: []string{"vip"}}, "old number": {Number: "1111"},
		"old start": near, "old status": {Status: in.Status},
	} {
		if got := ids(q); len(got) != 0 {
			t.Errorf("%s: found %v after the upsert moved it", name, got)
		}
	}
	for name, q := range map[string]Query{
		"new agent": {Agent: "2002", From: moved.Start, To: moved.Start.Add(time.Second)},
		"new tag":   {Tags: []string{"sales"}}, "new number": {Number: "2222"},
		"new status": {Status: StatusInterrupted},
	} {
		if got := ids(q); !slices.Equal(got, []string{in.ID}) {
			t.Errorf("%s: got %v, want [%s]", name, got, in.ID)
		}
	}
}

func TestSearchInvalid(t *testing.T) {
	s := openTest(t)
	for _, q := range []Query{{Sort: "name"}, {Limit: MaxLimit + 1}, {Limit: -1}, {Offset: -1},
		{Number: "12"}, {Number: "+-"}, {MinDuration: -1}} {
		_, err := s.Search(context.Background(), q)
		if callrec.ErrorCode(err) != callrec.EINVALID {
			t.Errorf("Search(%+v) err = %v, want invalid", q, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, Interaction{ID: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx: %v", err)
	}
}
