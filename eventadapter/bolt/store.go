// Package bolt keeps the Event Streams adapter's state in a bbolt file: the
// Kinesis checkpoints (eventadapter.CheckpointStore) and the bounded window
// of handled event ids (eventadapter.Deduper).
package bolt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"callrec/eventadapter"

	bbolt "go.etcd.io/bbolt"
)

// Default dedupe window, long enough for Event Streams redeliveries.
const (
	DefaultDedupeMaxAge     = 48 * time.Hour
	DefaultDedupeMaxEntries = 2_000_000
)

var (
	bucketCheckpoints = []byte("checkpoints") // stream bucket → shard → checkpoint value
	bucketIDs         = []byte("dedupe_ids")  // event id → 8-byte time
	bucketByTime      = []byte("dedupe_time") // 8-byte time + id → nil; its Sequence is the entry count
)

// Store is a bbolt-backed CheckpointStore and Deduper. It is safe for
// concurrent use.
type Store struct {
	db *bbolt.DB

	mu         sync.Mutex
	maxAge     time.Duration
	maxEntries int
}

var (
	_ eventadapter.CheckpointStore = (*Store)(nil)
	_ eventadapter.Deduper         = (*Store)(nil)
)

// Open opens (creating if needed) the store file at path. It fails if
// another process holds the file for longer than a few seconds.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketCheckpoints, bucketIDs, bucketByTime} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bolt: init %s: %w", path, err), db.Close())
	}
	return &Store{db: db, maxAge: DefaultDedupeMaxAge, maxEntries: DefaultDedupeMaxEntries}, nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// SetDedupeWindow bounds the dedupe window: ids older than maxAge, and the
// oldest ids beyond maxEntries, are evicted by the next Remember. A value
// <= 0 restores its default (48h, 2,000,000).
func (s *Store) SetDedupeWindow(maxAge time.Duration, maxEntries int) {
	if maxAge <= 0 {
		maxAge = DefaultDedupeMaxAge
	}
	if maxEntries <= 0 {
		maxEntries = DefaultDedupeMaxEntries
	}
	s.mu.Lock()
	s.maxAge, s.maxEntries = maxAge, maxEntries
	s.mu.Unlock()
}

func (s *Store) window() (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxAge, s.maxEntries
}
