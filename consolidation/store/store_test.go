package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
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
	g := genConfig{n: 10, agents: 3, teams: 2, queues: 2, dids: 2, end: benchBase, span: time.Hour, seed: 1}
	in := g.gen(3)
	in.Tags = []string{"vip"}
	in.Teams = []string{"north", "south"}
	in.Segments = []Segment{
		{Agent: "1001", Team: "north", ReservationSID: "WR1", WorkerSID: "WK1", Start: in.Start,
			End: in.Start.Add(time.Minute), Recorded: true, INUM: in.INUMs[0], OffsetMS: 1500},
		{Agent: "1002", Start: in.Start.Add(time.Minute)}, // not recorded, still going
	}
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
	for _, bad := range []Interaction{{}, {ID: "x", Agents: []string{"a\x00b"}}, {ID: "x", Teams: []string{"north", "a\x00"}}} {
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
	g := genConfig{n: 10, agents: 3, teams: 2, queues: 2, dids: 2, end: benchBase, span: time.Hour, seed: 2}
	in := g.gen(1)
	in.Agents, in.Tags, in.From = []string{"2001"}, []string{"vip"}, "+15550001111"
	in.Teams = []string{"north", "east"}
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
	moved.Teams = []string{"south", "east"}
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
		"old team": {Teams: []string{"north"}}, "old team + start": {Teams: []string{"east"}, From: near.From, To: near.To},
		"old teams": {Teams: []string{"north", "west"}},
	} {
		if got := ids(q); len(got) != 0 {
			t.Errorf("%s: found %v after the upsert moved it", name, got)
		}
	}
	for name, q := range map[string]Query{
		"new agent": {Agent: "2002", From: moved.Start, To: moved.Start.Add(time.Second)},
		"new tag":   {Tags: []string{"sales"}}, "new number": {Number: "2222"},
		"new status": {Status: StatusInterrupted},
		"new team":   {Teams: []string{"south"}}, "kept team": {Teams: []string{"east"}, From: moved.Start, To: moved.Start.Add(time.Second)},
		"new teams": {Teams: []string{"north", "south", "east"}}, "new teams desc": {Teams: []string{"south", "east"}, Sort: SortStartAsc},
	} {
		if got := ids(q); !slices.Equal(got, []string{in.ID}) {
			t.Errorf("%s: got %v, want [%s]", name, got, in.ID)
		}
	}
}

func TestSearchInvalid(t *testing.T) {
	s := openTest(t)
	for _, q := range []Query{{Sort: "name"}, {Limit: MaxLimit + 1}, {Limit: -1}, {Offset: -1},
		{Number: "12"}, {Number: "+-"}, {MinDuration: -1}, {Teams: []string{"north", "a\x00b"}},
		{Agent: "a\x00"}, {Tags: []string{"\x00"}}, {INUM: "x\x00"}} {
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

func TestPutNormalisesTeams(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	teams := []string{"north", "", "south", "north", "", "east", "south"}
	caller := slices.Clone(teams)
	in := Interaction{ID: "WT1", Start: benchBase, Status: StatusComplete, Teams: caller}
	if err := s.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "WT1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"north", "south", "east"}, got.Teams); diff != "" {
		t.Errorf("stored teams (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(teams, caller); diff != "" {
		t.Errorf("Put modified the caller's slice (-want +got):\n%s", diff)
	}
	if n := countKeys(t, s, bucketTeam); n != 3 {
		t.Errorf("team index holds %d keys, want 3", n)
	}
	for _, tt := range []struct {
		in   []string
		want []string
	}{
		{nil, nil}, {[]string{""}, nil}, {[]string{"a"}, []string{"a"}}, {[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "a"}, []string{"a"}}, {[]string{"", "b", "b", "a"}, []string{"b", "a"}},
	} {
		if got := uniqueNonEmpty(tt.in); !slices.Equal(got, tt.want) || (tt.want == nil) != (got == nil) {
			t.Errorf("uniqueNonEmpty(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// encodeMetaV1 is the meta encoding before teams were indexed, kept
// verbatim so records written by it stay readable.
func encodeMetaV1(m *meta) []byte {
	b := make([]byte, 0, 160)
	b = binary.AppendVarint(b, int64(invStart(m.Start)))
	b = binary.AppendVarint(b, m.DurationMS)
	for _, s := range []string{m.Direction, m.From, m.To, m.Queue, m.CallSID, m.TaskSID, m.Status} {
		b = appendString(b, s)
	}
	b = appendStrings(b, m.Agents)
	b = appendStrings(b, m.INUMs)
	return appendStrings(b, m.Tags)
}

func TestDecodeMetaWithoutTeams(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	g := genConfig{n: 10, agents: 3, queues: 2, dids: 2, end: benchBase, span: time.Hour, seed: 4}
	in := g.gen(2)
	in.Tags = []string{"vip", "sales"}
	if err := normalise(&in); err != nil {
		t.Fatal(err)
	}
	old := metaOf(&in)
	mb := encodeMetaV1(old)
	// The new encoding only appends; the old record is a strict prefix.
	if nb := old.encode(); !bytes.HasPrefix(nb, mb) || len(nb) == len(mb) {
		t.Fatalf("new encoding %x does not extend the old %x", nb, mb)
	}
	m, inv, err := decodeMeta(mb)
	if err != nil {
		t.Fatalf("decode old record: %v", err)
	}
	if inv != invStart(in.Start) || m.Teams != nil {
		t.Errorf("decoded inv %x teams %q, want %x and no teams", inv, m.Teams, invStart(in.Start))
	}
	want := *old
	want.Start = time.Time{} // kept only as inv
	if diff := cmp.Diff(&want, m); diff != "" {
		t.Errorf("decoded old record (-want +got):\n%s", diff)
	}

	// Store the record as the old code did: the JSON had no teams, the
	// indexes had no team bucket entries.
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		v := binary.AppendUvarint(nil, uint64(len(mb)))
		if err := tx.Bucket(bucketItems).Put([]byte(in.ID), append(append(v, mb...), js...)); err != nil {
			return err
		}
		for _, e := range old.entries(in.ID, invStart(in.Start)) {
			if err := tx.Bucket(e.bucket).Put(e.key, summary(old)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("Get old record (-want +got):\n%s", diff)
	}
	count := func(q Query) int {
		t.Helper()
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res.Total
	}
	// Residual checks decode the old meta: an agent plan with a tag and a
	// team filter, a time plan with a queue filter.
	for name, tt := range map[string]struct {
		q    Query
		want int
	}{
		"agent + tags":      {Query{Agent: in.Agents[0], Tags: []string{"sales", "vip"}}, 1},
		"queue":             {Query{Queue: in.Queue}, 1},
		"agent + team":      {Query{Agent: in.Agents[0], Teams: []string{"north"}}, 0},
		"queue + teams":     {Query{Queue: in.Queue, Teams: []string{"north", "south"}}, 0},
		"team":              {Query{Teams: []string{"north"}}, 0},
		"teams":             {Query{Teams: []string{"north", "south"}}, 0},
		"direction + teams": {Query{Direction: in.Direction, Teams: []string{"north", "south"}}, 0},
	} {
		if got := count(tt.q); got != tt.want {
			t.Errorf("%s: total %d, want %d", name, got, tt.want)
		}
	}

	// An upsert rewrites it in the new format and moves its index entries.
	up := in
	up.Teams = []string{"north"}
	up.Agents = []string{"3003"}
	if err := s.Put(ctx, up); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		q    Query
		want int
	}{
		"old agent":    {Query{Agent: in.Agents[0]}, 0},
		"new agent":    {Query{Agent: "3003", Teams: []string{"north"}}, 1},
		"team":         {Query{Teams: []string{"north"}}, 1},
		"queue + team": {Query{Queue: in.Queue, Teams: []string{"north", "south"}}, 1},
	} {
		if got := count(tt.q); got != tt.want {
			t.Errorf("after upsert, %s: total %d, want %d", name, got, tt.want)
		}
	}
	if n := countKeys(t, s, bucketAgent); n != 1 {
		t.Errorf("agent index holds %d keys after upsert, want 1", n)
	}
}
