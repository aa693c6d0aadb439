package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"callrec"

	bbolt "go.etcd.io/bbolt"
)

// CreateRecording allocates the next INUM of the claimed node, calls fill
// with it to build the record, and stores the record and its index entries.
// Everything happens in one read-write transaction: the advanced counter is
// committed together with the record, so an INUM is never handed out twice,
// even across a crash, and nothing is consumed when the call fails.
//
// fill runs inside the transaction, while other writers wait: it must be
// quick and must not call the Index. It may leave INUM and Node zero (they
// are set from the allocation); a nil result, a different INUM or Node, or
// an otherwise invalid record rolls everything back with EINVALID. Calling
// CreateRecording before ClaimNode fails with ECONFLICT.
func (x *Index) CreateRecording(ctx context.Context, fill func(callrec.INUM) *callrec.Recording) (*callrec.Recording, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: create recording: %w", err)
	}
	if fill == nil {
		return nil, fmt.Errorf("bolt: create recording: %w", callrec.Errorf(callrec.EINVALID, "nil fill function"))
	}
	var (
		inum callrec.INUM
		out  *callrec.Recording
	)
	err := x.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		node, ok, err := metaNode(meta)
		if err != nil {
			return err
		}
		if !ok {
			return callrec.Errorf(callrec.ECONFLICT, "index %s: no node claimed yet", x.path)
		}
		last, err := metaCounter(meta)
		if err != nil {
			return err
		}
		inum, err = callrec.NewINUM(node, last+1)
		if err != nil {
			return err
		}
		if err := meta.Put(keyCounter, binary.BigEndian.AppendUint64(nil, last+1)); err != nil {
			return err
		}
		r := fill(inum)
		if r == nil {
			return callrec.Errorf(callrec.EINVALID, "fill returned no recording")
		}
		if r.INUM == "" {
			r.INUM = inum
		}
		if r.Node == 0 {
			r.Node = node
		}
		if r.INUM != inum {
			return callrec.Errorf(callrec.EINVALID, "fill returned inum %s", r.INUM)
		}
		if err := validate(r); err != nil {
			return err
		}
		if tx.Bucket(bucketRecordings).Get([]byte(inum)) != nil {
			return callrec.Errorf(callrec.ECONFLICT, "inum %s already stored: counter went backwards", inum)
		}
		// Time keys of new recordings arrive in ascending order: pack the
		// pages full instead of splitting them in half.
		tx.Bucket(bucketByTime).FillPercent = 1.0
		if err := putRecord(tx, nil, r); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		if inum != "" {
			return nil, fmt.Errorf("bolt: create recording %s: %w", inum, err)
		}
		return nil, fmt.Errorf("bolt: create recording: %w", err)
	}
	return out, nil
}

// PutRecording replaces the stored record with r's INUM (state changes,
// accounting checkpoints, final accounting) and keeps the secondary indexes
// and the open list in step. It fails with ENOTFOUND if the INUM is unknown.
func (x *Index) PutRecording(ctx context.Context, r *callrec.Recording) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: put recording: %w", err)
	}
	if r == nil {
		return fmt.Errorf("bolt: put recording: %w", callrec.Errorf(callrec.EINVALID, "nil recording"))
	}
	if err := validate(r); err != nil {
		return fmt.Errorf("bolt: put recording %s: %w", r.INUM, err)
	}
	err := x.db.Update(func(tx *bbolt.Tx) error { return replaceRecord(tx, r) })
	if err != nil {
		return fmt.Errorf("bolt: put recording %s: %w", r.INUM, err)
	}
	return nil
}

// PutRecordings replaces many stored records in one transaction, so a
// periodic checkpoint of every active recording costs one commit. If any
// record is invalid or unknown, none is stored.
func (x *Index) PutRecordings(ctx context.Context, rs []*callrec.Recording) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: put recordings: %w", err)
	}
	for _, r := range rs {
		if err := validate(r); err != nil {
			return fmt.Errorf("bolt: put recordings: %w", err)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	err := x.db.Update(func(tx *bbolt.Tx) error {
		for _, r := range rs {
			if err := replaceRecord(tx, r); err != nil {
				return fmt.Errorf("recording %s: %w", r.INUM, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: put recordings: %w", err)
	}
	return nil
}

// replaceRecord overwrites an existing record.
func replaceRecord(tx *bbolt.Tx, r *callrec.Recording) error {
	old, err := loadRecord(tx.Bucket(bucketRecordings), []byte(r.INUM))
	if err != nil {
		return err
	}
	if old == nil {
		return callrec.Errorf(callrec.ENOTFOUND, "recording %s not found", r.INUM)
	}
	return putRecord(tx, old, r)
}

// putRecord stores r and moves its index entries from old's (nil for a new
// record), touching only the entries that change.
func putRecord(tx *bbolt.Tx, old, r *callrec.Recording) error {
	v, err := encodeRecord(r)
	if err != nil {
		return callrec.Errorf(callrec.EINVALID, "encode recording %s: %v", r.INUM, err)
	}
	if err := tx.Bucket(bucketRecordings).Put([]byte(r.INUM), v); err != nil {
		return err
	}
	keyFuncs := []struct {
		bucket []byte
		key    func(*callrec.Recording) []byte
	}{
		{bucketByTime, timeKey},
		{bucketByCall, callKey},
		{bucketByStream, streamKey},
	}
	for _, kf := range keyFuncs {
		b := tx.Bucket(kf.bucket)
		newKey := kf.key(r)
		var oldKey []byte
		if old != nil {
			oldKey = kf.key(old)
		}
		if oldKey != nil && bytes.Equal(oldKey, newKey) {
			continue
		}
		if oldKey != nil {
			if err := b.Delete(oldKey); err != nil {
				return err
			}
		}
		if newKey != nil {
			if err := b.Put(newKey, empty); err != nil {
				return err
			}
		}
	}
	open := tx.Bucket(bucketOpen)
	wasOpen := old != nil && old.State == callrec.StateRecording
	switch isOpen := r.State == callrec.StateRecording; {
	case isOpen && !wasOpen:
		return open.Put([]byte(r.INUM), empty)
	case !isOpen && old != nil:
		return open.Delete([]byte(r.INUM))
	}
	return nil
}
