package audit

import (
	"context"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

func TestVerifyEmptyAndIntact(t *testing.T) {
	l, _ := openLog(t)
	res, err := l.Verify(context.Background())
	if err != nil || res.Entries != 0 || res.LastHash != Genesis {
		t.Fatalf("empty Verify = %+v, %v", res, err)
	}
	es := appendN(t, l, 10, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	res, err = l.Verify(context.Background())
	if err != nil || res.Entries != 10 || res.LastHash != es[9].Hash {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n, k = 10, 4
	tests := []struct {
		name    string
		fn      func(t *testing.T, b *bbolt.Bucket)
		wantSeq uint64
	}{
		{"change a field", func(t *testing.T, b *bbolt.Bucket) {
			e := rawGet(t, b, k)
			e.Actor = "someone-else"
			rawPut(t, b, k, e)
		}, k},
		{"change details", func(t *testing.T, b *bbolt.Bucket) {
			e := rawGet(t, b, k)
			e.Details = map[string]string{"reason": "added later"}
			rawPut(t, b, k, e)
		}, k},
		{"delete an entry", func(t *testing.T, b *bbolt.Bucket) {
			if err := b.Delete(seqKey(k)); err != nil {
				t.Fatal(err)
			}
		}, k},
		{"delete the last entry", func(t *testing.T, b *bbolt.Bucket) {
			if err := b.Delete(seqKey(n)); err != nil {
				t.Fatal(err)
			}
		}, n},
		{"swap two entries", func(t *testing.T, b *bbolt.Bucket) {
			x, y := rawGet(t, b, k), rawGet(t, b, k+3)
			rawPut(t, b, k, y)
			rawPut(t, b, k+3, x)
		}, k},
		{"swap and renumber", func(t *testing.T, b *bbolt.Bucket) {
			x, y := rawGet(t, b, k), rawGet(t, b, k+3)
			x.Seq, y.Seq = y.Seq, x.Seq
			rawPut(t, b, k, y)
			rawPut(t, b, k+3, x)
		}, k},
		{"rehash entry but not the next prev", func(t *testing.T, b *bbolt.Bucket) {
			e := rawGet(t, b, k)
			e.Reason = "rewritten"
			h, err := ComputeHash(e)
			if err != nil {
				t.Fatal(err)
			}
			e.Hash = h
			rawPut(t, b, k, e)
		}, k + 1},
		{"append a forged entry", func(t *testing.T, b *bbolt.Bucket) {
			last := rawGet(t, b, n)
			e := Entry{Seq: n + 1, Time: last.Time, Type: View, Actor: "ghost", Prev: last.Hash}
			e.Hash, _ = ComputeHash(e)
			rawPut(t, b, n+1, e)
		}, n + 1},
		{"garbage value", func(t *testing.T, b *bbolt.Bucket) {
			if err := b.Put(seqKey(k), []byte("{not json")); err != nil {
				t.Fatal(err)
			}
		}, k},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := openLog(t)
			appendN(t, l, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			l = tamper(t, l, path, tt.fn)
			res, err := l.Verify(context.Background())
			wantTampered(t, err, tt.wantSeq)
			if res.Entries != tt.wantSeq-1 {
				t.Errorf("verified entries = %d, want %d", res.Entries, tt.wantSeq-1)
			}
			t.Log(err)
		})
	}
}
