package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// openLog opens a fresh log in a temporary directory, closed at cleanup.
func openLog(t *testing.T) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, path
}

// appendN appends n entries of varied types with times one minute apart
// starting at base, and returns them as stored.
func appendN(t *testing.T, l *Log, n int, base time.Time) []Entry {
	t.Helper()
	var out []Entry
	for i := range n {
		e, err := l.Append(context.Background(), Entry{
			Time:   base.Add(time.Duration(i) * time.Minute),
			Type:   EventTypes[i%len(EventTypes)],
			Actor:  fmt.Sprintf("user%d", i%3),
			Target: fmt.Sprintf("INUM-%d", i%4),
		})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

// tamper closes l, runs fn on the raw bbolt file's entries bucket in a write
// transaction, and returns the log reopened (closed at cleanup).
func tamper(t *testing.T, l *Log, path string, fn func(t *testing.T, b *bbolt.Bucket)) *Log {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		fn(t, tx.Bucket(bucketEntries))
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("bbolt close: %v", err)
	}
	l, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// rawGet decodes the entry stored under seq.
func rawGet(t *testing.T, b *bbolt.Bucket, seq uint64) Entry {
	t.Helper()
	var e Entry
	if err := json.Unmarshal(b.Get(seqKey(seq)), &e); err != nil {
		t.Fatalf("decode seq %d: %v", seq, err)
	}
	return e
}

// rawPut stores e under seq.
func rawPut(t *testing.T, b *bbolt.Bucket, seq uint64, e Entry) {
	t.Helper()
	v, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(seqKey(seq), v); err != nil {
		t.Fatal(err)
	}
}

// wantTampered fails unless err is a *TamperError at seq wrapping ErrTampered.
func wantTampered(t *testing.T, err error, seq uint64) {
	t.Helper()
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify error = %v, want ErrTampered", err)
	}
	var te *TamperError
	if !errors.As(err, &te) {
		t.Fatalf("Verify error %v is no *TamperError", err)
	}
	if te.Seq != seq {
		t.Fatalf("Verify broke at seq %d (%v), want %d", te.Seq, err, seq)
	}
}
