package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Seen reports, for each id, whether it is in the window. It reads in one
// transaction.
func (s *Store) Seen(ctx context.Context, ids []string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: seen: %w", err)
	}
	seen := make([]bool, len(ids))
	if len(ids) == 0 {
		return seen, nil
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIDs)
		for i, id := range ids {
			seen[i] = id != "" && b.Get([]byte(id)) != nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: seen: %w", err)
	}
	return seen, nil
}

// Remember adds ids to the window as handled at time at (an id already
// there keeps the later of its two times), then evicts, oldest first, the
// ids older than at minus the maximum age and those beyond the maximum
// count, all in one write transaction.
func (s *Store) Remember(ctx context.Context, ids []string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: remember: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("bolt: remember: empty event id")
		}
	}
	maxAge, maxEntries := s.window()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		byID, byTime := tx.Bucket(bucketIDs), tx.Bucket(bucketByTime)
		byTime.FillPercent = 0.9 // keys mostly arrive in time order
		count := byTime.Sequence()
		stamp := timeKey(at)
		for _, id := range ids {
			key := []byte(id)
			if old := byID.Get(key); old != nil {
				if bytes.Compare(old, stamp) >= 0 {
					continue
				}
				if err := byTime.Delete(indexKey(old, id)); err != nil {
					return err
				}
				count--
			}
			if err := byID.Put(key, stamp); err != nil {
				return err
			}
			if err := byTime.Put(indexKey(stamp, id), nil); err != nil {
				return err
			}
			count++
		}
		cutoff := timeKey(at.Add(-maxAge))
		c := byTime.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if count <= uint64(maxEntries) && bytes.Compare(k[:8], cutoff) >= 0 {
				break
			}
			if err := byID.Delete(k[8:]); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			count--
		}
		return byTime.SetSequence(count)
	})
	if err != nil {
		return fmt.Errorf("bolt: remember %d ids: %w", len(ids), err)
	}
	return nil
}

// timeKey encodes t so that byte order is time order (for times after 1970).
func timeKey(t time.Time) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	return k
}

func indexKey(stamp []byte, id string) []byte {
	k := make([]byte, 0, 8+len(id))
	return append(append(k, stamp...), id...)
}
