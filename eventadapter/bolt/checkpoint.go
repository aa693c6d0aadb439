package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// A checkpoint value is one flag byte followed by the sequence number.
const flagFinished = 1

// Checkpoint returns the last processed sequence number of a shard ("" if
// none) and whether the shard was finished.
func (s *Store) Checkpoint(ctx context.Context, stream, shard string) (seq string, finished bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("bolt: checkpoint %s/%s: %w", stream, shard, err)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints).Bucket([]byte(stream))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(shard))
		if len(v) == 0 {
			return nil
		}
		seq, finished = string(v[1:]), v[0]&flagFinished != 0
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("bolt: checkpoint %s/%s: %w", stream, shard, err)
	}
	return seq, finished, nil
}

// SaveCheckpoint records the last processed sequence number of a shard,
// keeping its finished flag.
func (s *Store) SaveCheckpoint(ctx context.Context, stream, shard, seq string) error {
	err := s.updateCheckpoint(ctx, stream, shard, func(flags byte, _ string) (byte, string) {
		return flags, seq
	})
	if err != nil {
		return fmt.Errorf("bolt: save checkpoint %s/%s: %w", stream, shard, err)
	}
	return nil
}

// FinishShard records that a closed shard was read to its end, keeping its
// last sequence number.
func (s *Store) FinishShard(ctx context.Context, stream, shard string) error {
	err := s.updateCheckpoint(ctx, stream, shard, func(flags byte, seq string) (byte, string) {
		return flags | flagFinished, seq
	})
	if err != nil {
		return fmt.Errorf("bolt: finish shard %s/%s: %w", stream, shard, err)
	}
	return nil
}

func (s *Store) updateCheckpoint(ctx context.Context, stream, shard string, f func(flags byte, seq string) (byte, string)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if stream == "" || shard == "" {
		return fmt.Errorf("empty stream or shard name")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketCheckpoints).CreateBucketIfNotExists([]byte(stream))
		if err != nil {
			return err
		}
		var flags byte
		var seq string
		if v := b.Get([]byte(shard)); len(v) > 0 {
			flags, seq = v[0], string(v[1:])
		}
		flags, seq = f(flags, seq)
		return b.Put([]byte(shard), append([]byte{flags}, seq...))
	})
}
