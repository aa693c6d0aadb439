package store

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// startIter walks the keys of one or more fields of a start-ordered index
// bucket over a query's start range, merged into the query's start order:
// newest first for SortStart (ascending keys), oldest first otherwise. An
// interaction indexed under several of the fields (a call of two queried
// teams) is yielded once.
//
// Keys are field 0x00 inv id, so within a field the key suffix after the
// 0x00 sorts exactly like (inv, id), the order of every start sort. Merging
// compares those suffixes, and copies of one interaction, having equal
// suffixes, come out next to each other.
type startIter struct {
	ranges []*fieldRange
	newest bool
	last   *fieldRange // yielded last, advanced on the next call
	lastSx []byte      // suffix of the key yielded last
}

// fieldRange is the position of one field's cursor; k is nil once the
// cursor has left the field or the start range.
type fieldRange struct {
	cur          *bolt.Cursor
	prefix       []byte // field 0x00
	invLo, invHi uint64
	newest       bool
	k, v         []byte
}

func newStartIter(b *bolt.Bucket, fields []string, c *compiled) *startIter {
	it := &startIter{newest: c.Sort != SortStartAsc}
	for _, f := range fields {
		r := &fieldRange{cur: b.Cursor(), prefix: append([]byte(f), 0), invLo: c.invLo, invHi: c.invHi,
			newest: it.newest}
		r.first()
		it.ranges = append(it.ranges, r)
	}
	return it
}

// first positions the cursor on the field's first key in iteration order.
func (r *fieldRange) first() {
	if r.newest {
		r.k, r.v = r.cur.Seek(binary.BigEndian.AppendUint64(bytes.Clone(r.prefix), r.invLo))
	} else {
		var upper []byte
		if r.invHi == ^uint64(0) {
			upper = append(bytes.Clone(r.prefix[:len(r.prefix)-1]), 1)
		} else {
			upper = binary.BigEndian.AppendUint64(bytes.Clone(r.prefix), r.invHi+1)
		}
		if k, _ := r.cur.Seek(upper); k == nil {
			r.k, r.v = r.cur.Last()
		} else {
			r.k, r.v = r.cur.Prev()
		}
	}
	r.check()
}

func (r *fieldRange) advance() {
	if r.newest {
		r.k, r.v = r.cur.Next()
	} else {
		r.k, r.v = r.cur.Prev()
	}
	r.check()
}

// check clears k when the cursor has left the field or the start range.
func (r *fieldRange) check() {
	if r.k == nil || !bytes.HasPrefix(r.k, r.prefix) {
		r.k, r.v = nil, nil
		return
	}
	inv, _, ok := splitKey(r.k, len(r.prefix))
	if ok && ((r.newest && inv > r.invHi) || (!r.newest && inv < r.invLo)) {
		r.k, r.v = nil, nil
	}
}

func (r *fieldRange) suffix() []byte { return r.k[len(r.prefix):] }

// next returns the next key and value and the key's field length with its
// 0x00; k is nil when every range is exhausted. It is a source.
func (it *startIter) next() (k, v []byte, sep int) {
	if it.last != nil {
		// Moved only now: the caller is done with the key yielded last.
		it.last.advance()
		it.last = nil
	}
	for {
		// A linear pick, not a heap: k is a supervisor's few teams.
		var best *fieldRange
		for _, r := range it.ranges {
			if r.k == nil {
				continue
			}
			if best == nil {
				best = r
				continue
			}
			c := bytes.Compare(r.suffix(), best.suffix())
			if (it.newest && c < 0) || (!it.newest && c > 0) {
				best = r
			}
		}
		if best == nil {
			return nil, nil, 0
		}
		if it.lastSx != nil && bytes.Equal(best.suffix(), it.lastSx) {
			best.advance() // the interaction again, under another field
			continue
		}
		it.lastSx = append(it.lastSx[:0], best.suffix()...)
		it.last = best
		return best.k, best.v, len(best.prefix)
	}
}
