package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"callrec"

	bbolt "go.etcd.io/bbolt"
)

// Page sizes of FindRecordings.
const (
	// DefaultLimit is the page size when the filter's Limit is 0.
	DefaultLimit = 100
	// MaxLimit is the largest Limit FindRecordings accepts.
	MaxLimit = 1000
)

// FindRecordingByINUM returns the stored record, EINVALID for a malformed
// INUM (bad length or check digit) and ENOTFOUND for an unknown one.
func (x *Index) FindRecordingByINUM(ctx context.Context, inum callrec.INUM) (*callrec.Recording, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: find recording %s: %w", inum, err)
	}
	if _, err := callrec.ParseINUM(string(inum)); err != nil {
		return nil, fmt.Errorf("bolt: find recording: %w", err)
	}
	var r *callrec.Recording
	err := x.db.View(func(tx *bbolt.Tx) error {
		var err error
		r, err = loadRecord(tx.Bucket(bucketRecordings), []byte(inum))
		if err == nil && r == nil {
			err = callrec.Errorf(callrec.ENOTFOUND, "recording %s not found", inum)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: find recording %s: %w", inum, err)
	}
	return r, nil
}

// FindRecordings returns the records matching f, newest first (by StartedAt,
// then INUM), the page selected by f.Offset and f.Limit (0 means
// DefaultLimit; above MaxLimit or negative is EINVALID), and the number of
// matches ignoring Offset and Limit.
//
// It walks the call SID index when f.CallSID is set, else the stream SID
// index when f.StreamSID is set, else the time index bounded by f.From
// (inclusive) and f.To (exclusive). Every other field of f is applied on top.
func (x *Index) FindRecordings(ctx context.Context, f callrec.RecordingFilter) ([]*callrec.Recording, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("bolt: find recordings: %w", err)
	}
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, 0, fmt.Errorf("bolt: find recordings: %w",
			callrec.Errorf(callrec.EINVALID, "limit %d out of range 0..%d", f.Limit, MaxLimit))
	}
	if f.Offset < 0 {
		return nil, 0, fmt.Errorf("bolt: find recordings: %w",
			callrec.Errorf(callrec.EINVALID, "negative offset %d", f.Offset))
	}
	q := query{f: f, limit: limit, out: []*callrec.Recording{}}
	err := x.db.View(func(tx *bbolt.Tx) error {
		q.recs = tx.Bucket(bucketRecordings)
		q.open = tx.Bucket(bucketOpen)
		switch {
		case f.CallSID != "":
			q.checkStream = f.StreamSID != ""
			return q.scanDesc(tx.Bucket(bucketByCall), sidPrefix(f.CallSID))
		case f.StreamSID != "":
			return q.scanStream(tx.Bucket(bucketByStream))
		default:
			return q.scanDesc(tx.Bucket(bucketByTime), nil)
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt: find recordings: %w", err)
	}
	return q.out, q.total, nil
}

// OpenRecordings returns every record in state recording, in INUM order:
// the list to repair after a crash. It reads the open bucket, not every
// record.
func (x *Index) OpenRecordings(ctx context.Context) ([]*callrec.Recording, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: open recordings: %w", err)
	}
	out := []*callrec.Recording{}
	err := x.db.View(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucketRecordings)
		return tx.Bucket(bucketOpen).ForEach(func(k, _ []byte) error {
			r, err := loadRecord(recs, k)
			if err == nil && r == nil {
				err = callrec.Errorf(callrec.EINTERNAL, "open list names unknown recording %s", k)
			}
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open recordings: %w", err)
	}
	return out, nil
}

// query is one FindRecordings walk: candidates arrive newest first and
// consider counts the matches and keeps the requested page.
type query struct {
	f           callrec.RecordingFilter
	limit       int
	checkStream bool // the walked index does not select on StreamSID
	recs, open  *bbolt.Bucket
	total       int
	out         []*callrec.Recording
}

// scanDesc walks keys of the form prefix + time + INUM from the newest down,
// within [From, To).
func (q *query) scanDesc(b *bbolt.Bucket, prefix []byte) error {
	lower := binary.BigEndian.AppendUint64(bytes.Clone(prefix), boundNano(q.f.From))
	var upper []byte // exclusive; nil means past the prefix's last key
	switch {
	case !q.f.To.IsZero():
		upper = binary.BigEndian.AppendUint64(bytes.Clone(prefix), boundNano(q.f.To))
	case len(prefix) > 0:
		// SID prefixes end in 0x00: the same SID followed by 0x01 sorts
		// after all of them.
		upper = bytes.Clone(prefix)
		upper[len(upper)-1]++
	}
	c := b.Cursor()
	var k []byte
	if upper == nil {
		k, _ = c.Last()
	} else if k, _ = c.Seek(upper); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, lower) >= 0; k, _ = c.Prev() {
		if len(k) != len(prefix)+8+inumLen {
			return callrec.Errorf(callrec.EINTERNAL, "corrupt index key %q", k)
		}
		if err := q.consider(k[len(k)-inumLen:], nil); err != nil {
			return err
		}
	}
	return nil
}

// scanStream loads every record of one stream SID (normally one), keeps
// those within [From, To), and considers them newest first.
func (q *query) scanStream(b *bbolt.Bucket) error {
	prefix := sidPrefix(q.f.StreamSID)
	from, to := boundNano(q.f.From), uint64(0)
	if !q.f.To.IsZero() {
		to = boundNano(q.f.To)
	}
	var rs []*callrec.Recording
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		inum := k[len(prefix):]
		r, err := loadRecord(q.recs, inum)
		if err == nil && r == nil {
			err = callrec.Errorf(callrec.EINTERNAL, "stream index names unknown recording %s", inum)
		}
		if err != nil {
			return err
		}
		at := uint64(r.StartedAt.UnixNano())
		if at < from || (!q.f.To.IsZero() && at >= to) {
			continue
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *callrec.Recording) int {
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), cmp.Compare(b.INUM, a.INUM))
	})
	for _, r := range rs {
		if err := q.consider([]byte(r.INUM), r); err != nil {
			return err
		}
	}
	return nil
}

// consider applies the filters the walked index does not, counts a match,
// and keeps it if it falls in the requested page. r is the record when the
// caller already has it; otherwise it is loaded only when needed.
func (q *query) consider(inum []byte, r *callrec.Recording) error {
	load := func() error {
		if r != nil {
			return nil
		}
		var err error
		r, err = loadRecord(q.recs, inum)
		if err == nil && r == nil {
			err = callrec.Errorf(callrec.EINTERNAL, "index names unknown recording %s", inum)
		}
		return err
	}
	if q.checkStream {
		if err := load(); err != nil {
			return err
		}
		if r.Stream.StreamSID != q.f.StreamSID {
			return nil
		}
	}
	switch {
	case q.f.State == "":
	case q.f.State == callrec.StateRecording && r == nil:
		if !has(q.open, inum) {
			return nil
		}
	default:
		if err := load(); err != nil {
			return err
		}
		if r.State != q.f.State {
			return nil
		}
	}
	q.total++
	if q.total <= q.f.Offset || len(q.out) >= q.limit {
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	q.out = append(q.out, r)
	return nil
}
