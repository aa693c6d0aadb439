package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// ErrTampered is wrapped by every error Verify returns for a broken chain.
var ErrTampered = errors.New("audit trail tampered")

// TamperError says where and how the chain is broken. It wraps ErrTampered.
type TamperError struct {
	Seq    uint64 // the first sequence number that fails
	Reason string // how it fails
}

// Error implements the error interface.
func (e *TamperError) Error() string {
	return fmt.Sprintf("%v at seq %d: %s", ErrTampered, e.Seq, e.Reason)
}

// Unwrap returns ErrTampered.
func (e *TamperError) Unwrap() error { return ErrTampered }

// VerifyResult summarizes a verified chain.
type VerifyResult struct {
	Entries  uint64 // entries that verified (on failure: those before the break)
	LastHash string // Hash of the last verified entry (Genesis if none)
}

// Verify walks the whole log in one read transaction and checks that the
// entries are numbered 1, 2, 3… without gaps, that each one's stored Seq
// matches its key, that each Prev is the Hash of the entry before (Genesis
// for the first), that each Hash is the SHA-256 of the entry's canonical
// encoding, and that the last entry is the one the head record names. On the
// first failure it returns the result so far and a *TamperError (wrapping
// ErrTampered) naming the broken Seq.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	res := VerifyResult{LastHash: Genesis}
	err := l.db.View(func(tx *bbolt.Tx) error {
		headSeq, headHash, err := head(tx)
		if err != nil {
			return &TamperError{Seq: 1, Reason: err.Error()}
		}
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if res.Entries%1024 == 1023 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			want := res.Entries + 1
			if want > headSeq {
				return &TamperError{Seq: want, Reason: fmt.Sprintf("the head record says the log ends at seq %d but it goes on", headSeq)}
			}
			e, err := check(k, v, want, res.LastHash)
			if err != nil {
				return err
			}
			res.Entries, res.LastHash = want, e.Hash
		}
		switch {
		case headSeq > res.Entries:
			return &TamperError{Seq: res.Entries + 1, Reason: fmt.Sprintf("missing: the log ends at seq %d but its head record says %d", res.Entries, headSeq)}
		case headHash != res.LastHash:
			return &TamperError{Seq: headSeq, Reason: "hash differs from the head record's"}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("audit: verify: %w", err)
	}
	return res, nil
}

// check verifies the entry stored under key k with value v, which should be
// sequence number want chained to prev, and returns the decoded entry.
func check(k, v []byte, want uint64, prev string) (Entry, error) {
	if len(k) != 8 {
		return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("malformed key %x", k)}
	}
	if got := binary.BigEndian.Uint64(k); got != want {
		if got > want {
			return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("missing: the next stored entry is seq %d", got)}
		}
		return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("out of order: found key of seq %d", got)}
	}
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("undecodable entry: %v", err)}
	}
	if e.Seq != want {
		return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("holds the entry claiming seq %d (moved or swapped)", e.Seq)}
	}
	if e.Prev != prev {
		return Entry{}, &TamperError{Seq: want, Reason: fmt.Sprintf("prev %.12s… does not match the hash of seq %d, %.12s…", e.Prev, want-1, prev)}
	}
	h, err := ComputeHash(e)
	if err != nil {
		return Entry{}, &TamperError{Seq: want, Reason: err.Error()}
	}
	if h != e.Hash {
		return Entry{}, &TamperError{Seq: want, Reason: "content does not match its hash (entry altered)"}
	}
	return e, nil
}
