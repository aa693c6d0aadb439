package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"callrec"

	"github.com/google/go-cmp/cmp"
)

func TestAppendAssignsChain(t *testing.T) {
	l, _ := openLog(t)
	fixed := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	l.now = func() time.Time { return fixed }
	ctx := context.Background()
	a, err := l.Append(ctx, Entry{Type: LoginOK, Actor: "alice", Role: "admin", Remote: "10.0.0.1", Seq: 99, Prev: "x", Hash: "y"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Append(ctx, Entry{Type: Search, Actor: "alice", Details: map[string]string{"from": "2026-01-01", "agent": "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Seq != 1 || a.Prev != Genesis || b.Seq != 2 || b.Prev != a.Hash {
		t.Fatalf("chain: a=%d/%s b=%d/%s", a.Seq, a.Prev, b.Seq, b.Prev)
	}
	if !a.Time.Equal(fixed) || a.Time.Location() != time.UTC {
		t.Fatalf("time = %v, want %v in UTC", a.Time, fixed)
	}
	got, total, err := l.Find(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Entry{b, a}, got); diff != "" || total != 2 {
		t.Fatalf("Find total %d, diff (-want +got):\n%s", total, diff)
	}
}

func TestAppendInvalid(t *testing.T) {
	l, _ := openLog(t)
	for _, e := range []Entry{
		{Type: "coffee"},
		{},
		{Type: View, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := l.Append(context.Background(), e); callrec.ErrorCode(err) != callrec.EINVALID {
			t.Errorf("Append(%+v) = %v, want EINVALID", e, err)
		}
	}
}

func TestCanonicalIsStable(t *testing.T) {
	e := Entry{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Type: Export, Actor: "a", Reason: "court order <42>",
		Details: map[string]string{"b": "2", "a": "1"}, Prev: Genesis, Hash: "ignored"}
	got, err := Canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"seq":7,"time":"2026-01-02T03:04:05.000000006Z","type":"export","actor":"a","role":"","remote":"","target":"",` +
		`"reason":"court order \u003c42\u003e","details":{"a":"1","b":"2"},"prev":"` + Genesis + `"}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Fatalf("Canonical (-want +got):\n%s", diff)
	}
	empty := e
	empty.Details = map[string]string{}
	nilD := e
	nilD.Details = nil
	h1, _ := ComputeHash(empty)
	h2, _ := ComputeHash(nilD)
	if h1 != h2 {
		t.Fatal("empty and nil Details hash differently")
	}
}

func TestConcurrentAppend(t *testing.T) {
	l, _ := openLog(t)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := l.Append(context.Background(), Entry{Type: Playback, Actor: fmt.Sprintf("w%d", w), Target: fmt.Sprint(i)})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Entries != workers*each {
		t.Fatalf("Verify entries = %d, want %d", res.Entries, workers*each)
	}
	all, total, err := l.Find(context.Background(), Filter{Limit: MaxLimit})
	if err != nil || total != workers*each {
		t.Fatalf("Find total %d err %v", total, err)
	}
	for i, e := range all {
		if want := uint64(workers*each - i); e.Seq != want {
			t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, want)
		}
	}
	if all[0].Hash != res.LastHash {
		t.Fatalf("LastHash %s, newest entry %s", res.LastHash, all[0].Hash)
	}
}

func TestReopenPersists(t *testing.T) {
	l, path := openLog(t)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	before := appendN(t, l, 5, base)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	next, err := l.Append(context.Background(), Entry{Type: Logout, Actor: "user0"})
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq != 6 || next.Prev != before[4].Hash {
		t.Fatalf("after reopen: seq %d prev %s, want 6 and %s", next.Seq, next.Prev, before[4].Hash)
	}
	got, _, err := l.Find(context.Background(), Filter{To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{before[4], before[3], before[2], before[1], before[0]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Find after reopen (-want +got):\n%s", diff)
	}
	if _, err := l.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	l, _ := openLog(t)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	es := appendN(t, l, 20, base) // type i%10, actor user(i%3), target INUM-(i%4), time base+i min
	seqs := func(idx ...int) []uint64 {
		var out []uint64
		for _, i := range idx {
			out = append(out, es[i].Seq)
		}
		return out
	}
	tests := []struct {
		name  string
		f     Filter
		want  []uint64
		total int
	}{
		{"all newest first", Filter{Limit: 3}, seqs(19, 18, 17), 20},
		{"offset", Filter{Limit: 2, Offset: 18}, seqs(1, 0), 20},
		{"offset past end", Filter{Offset: 30}, nil, 20},
		{"time window", Filter{From: base.Add(5 * time.Minute), To: base.Add(8 * time.Minute)}, seqs(7, 6, 5), 3},
		{"types", Filter{Types: []EventType{Export, LoginOK}}, seqs(16, 10, 6, 0), 4},
		{"actor", Filter{Actor: "user2", Limit: 2}, seqs(17, 14), 6},
		{"target and type", Filter{Target: "INUM-1", Types: []EventType{Search}}, seqs(13), 1},
		{"no match", Filter{Actor: "mallory"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := l.Find(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var gs []uint64
			for _, e := range got {
				gs = append(gs, e.Seq)
			}
			if diff := cmp.Diff(tt.want, gs); diff != "" || total != tt.total {
				t.Fatalf("total %d want %d; seqs (-want +got):\n%s", total, tt.total, diff)
			}
		})
	}
}

func TestFindInvalid(t *testing.T) {
	l, _ := openLog(t)
	for _, f := range []Filter{{Limit: -1}, {Offset: -1}, {Limit: MaxLimit + 1}, {Types: []EventType{"nope"}}} {
		if _, _, err := l.Find(context.Background(), f); callrec.ErrorCode(err) != callrec.EINVALID {
			t.Errorf("Find(%+v) = %v, want EINVALID", f, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	l, _ := openLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, Entry{Type: View}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append on canceled ctx = %v", err)
	}
}
