package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"callrec/tracker"
)

// Tombstones: a retired contact leaves its snapshot for a small record
// (task SID → when it ended and when it was retired), indexed by retirement
// time so that old ones are pruned without a full scan.
var (
	bucketTombstones = []byte("tombstones")      // task SID → 16 bytes: ended ns, retired ns
	bucketTombTime   = []byte("tombstones_time") // 8-byte retired ns + task SID → nil
)

var _ tracker.RetentionStore = (*Store)(nil)

// unixNano is t in nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func tombTimeKey(retired int64, taskSID string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(retired))
	return append(k, taskSID...)
}

// RetireContacts implements tracker.RetentionStore: in one transaction,
// each contact's snapshot is deleted and its tombstone written (replacing
// an older one of the same task).
func (s *Store) RetireContacts(ctx context.Context, ts []tracker.Tombstone) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		contacts, tombs, byTime := tx.Bucket(bucketContacts), tx.Bucket(bucketTombstones), tx.Bucket(bucketTombTime)
		for _, t := range ts {
			sid := []byte(t.TaskSID)
			if err := contacts.Delete(sid); err != nil {
				return err
			}
			if old := tombs.Get(sid); len(old) == 16 {
				if err := byTime.Delete(tombTimeKey(int64(binary.BigEndian.Uint64(old[8:])), t.TaskSID)); err != nil {
					return err
				}
			}
			retired := unixNano(t.RetiredAt)
			v := binary.BigEndian.AppendUint64(nil, uint64(unixNano(t.EndedAt)))
			v = binary.BigEndian.AppendUint64(v, uint64(retired))
			if err := tombs.Put(sid, v); err != nil {
				return err
			}
			if err := byTime.Put(tombTimeKey(retired, t.TaskSID), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("retire %d contacts: %w", len(ts), err)
	}
	return nil
}

// Tombstone implements tracker.RetentionStore.
func (s *Store) Tombstone(ctx context.Context, taskSID string) (tracker.Tombstone, bool, error) {
	if err := ctx.Err(); err != nil {
		return tracker.Tombstone{}, false, err
	}
	var v []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		v = append(v, tx.Bucket(bucketTombstones).Get([]byte(taskSID))...)
		return nil
	})
	if err != nil || v == nil {
		return tracker.Tombstone{}, false, err
	}
	if len(v) != 16 {
		return tracker.Tombstone{}, false, fmt.Errorf("tombstone of %s: %d bytes, want 16", taskSID, len(v))
	}
	return tracker.Tombstone{TaskSID: taskSID,
		EndedAt:   fromNano(int64(binary.BigEndian.Uint64(v))),
		RetiredAt: fromNano(int64(binary.BigEndian.Uint64(v[8:])))}, true, nil
}

// PruneTombstones implements tracker.RetentionStore: it deletes the
// tombstones of contacts retired before before, oldest first.
func (s *Store) PruneTombstones(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	limit := unixNano(before)
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		tombs, c := tx.Bucket(bucketTombstones), tx.Bucket(bucketTombTime).Cursor()
		for k, _ := c.First(); len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) < limit; k, _ = c.First() {
			if err := tombs.Delete(append([]byte(nil), k[8:]...)); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune tombstones: %w", err)
	}
	return n, nil
}
