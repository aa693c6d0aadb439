package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"callrec"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names and meta keys.
var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	keyHead       = []byte("head")
)

// lockTimeout bounds how long Open waits for a file lock held by another
// process.
const lockTimeout = 2 * time.Second

// Log is an append-only, hash-chained audit log in one bbolt file. It is safe
// for concurrent use: appends are serialized by bbolt's single writer, so
// the chain never forks.
type Log struct {
	db  *bbolt.DB
	now func() time.Time
}

// Open opens (creating if needed) the audit log at path. If another process
// holds the file, Open fails after two seconds instead of hanging.
func Open(path string) (*Log, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("audit: open %s: still locked after %s: %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketEntries, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return &Log{db: db, now: time.Now}, nil
}

// Close releases the file and its lock.
func (l *Log) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// Append adds e to the end of the log and returns it as stored. It assigns
// Seq, Prev and Hash (any values given are ignored) and Time if it is zero;
// Time is stored in UTC. The Type must be one of EventTypes (EINVALID
// otherwise). Everything happens in one bbolt write transaction, which is
// fsynced before Append returns.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("audit: append: %w", err)
	}
	if !e.Type.Valid() {
		return Entry{}, callrec.Errorf(callrec.EINVALID, "audit: unknown event type %q", e.Type)
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.Round(0).UTC()
	if y := e.Time.Year(); y < 1 || y > 9999 {
		return Entry{}, callrec.Errorf(callrec.EINVALID, "audit: time %s out of range", e.Time)
	}
	if len(e.Details) == 0 {
		e.Details = nil
	} else {
		d := make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			d[k] = v
		}
		e.Details = d
	}
	err := l.db.Update(func(tx *bbolt.Tx) error {
		seq, prev, err := head(tx)
		if err != nil {
			return err
		}
		e.Seq, e.Prev = seq+1, prev
		if e.Hash, err = ComputeHash(e); err != nil {
			return err
		}
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode entry: %w", err)
		}
		if err := tx.Bucket(bucketEntries).Put(seqKey(e.Seq), v); err != nil {
			return fmt.Errorf("put entry: %w", err)
		}
		return tx.Bucket(bucketMeta).Put(keyHead, append(seqKey(e.Seq), e.Hash...))
	})
	if err != nil {
		return Entry{}, fmt.Errorf("audit: append %s: %w", e.Type, err)
	}
	return e, nil
}

// head returns the Seq and Hash of the last entry, or 0 and Genesis for an
// empty log.
func head(tx *bbolt.Tx) (uint64, string, error) {
	v := tx.Bucket(bucketMeta).Get(keyHead)
	if v == nil {
		return 0, Genesis, nil
	}
	if len(v) != 8+64 {
		return 0, "", fmt.Errorf("%w: head record has %d bytes, want 72", ErrTampered, len(v))
	}
	return binary.BigEndian.Uint64(v[:8]), string(v[8:]), nil
}

// seqKey is the bbolt key of sequence number seq.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}
