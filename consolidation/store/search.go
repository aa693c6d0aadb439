package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// plan is the index a search iterates.
type plan struct {
	name   string // filter the index decides, for compiled.metaFiltersSet
	bucket []byte
	field  string
	// number plans scan every key starting with field (reversed digits);
	// the others scan field 0x00 over the start range, in start order.
	number bool
}

// choosePlan picks the most selective index the query allows: exact IDs,
// then agent, customer number, queue, tag, status, direction, and finally
// the time index. Agent, queue, tag, status and direction keys carry the
// start, so a time range narrows them as well.
func choosePlan(c *compiled) plan {
	switch {
	case c.INUM != "":
		return plan{name: "inum", bucket: bucketINUM, field: string(c.INUM)}
	case c.CallSID != "":
		return plan{name: "call", bucket: bucketCall, field: c.CallSID}
	case c.TaskSID != "":
		return plan{name: "task", bucket: bucketTask, field: c.TaskSID}
	case c.Agent != "":
		return plan{name: "agent", bucket: bucketAgent, field: c.Agent}
	case c.numDigits != "":
		return plan{name: "number", bucket: bucketNumber, field: reverse(c.numDigits), number: true}
	case c.Queue != "":
		return plan{name: "queue", bucket: bucketQueue, field: c.Queue}
	case len(c.Tags) > 0:
		return plan{name: "tag", bucket: bucketTag, field: c.Tags[0]}
	case c.Status != "":
		return plan{name: "status", bucket: bucketStatus, field: c.Status}
	case c.Direction != "":
		return plan{name: "direction", bucket: bucketDir, field: c.Direction}
	}
	return plan{name: "time", bucket: bucketTime}
}

// hit is one matching interaction.
type hit struct {
	inv uint64
	dur int64
	id  string
}

// Search returns one page of the interactions matching q, in q.Sort order,
// with the total count. When results stream in start order (a start sort on
// any index but the number index) counting stops at CountCap; see Result.
func (s *Store) Search(ctx context.Context, q Query) (Result, error) {
	var res Result
	c, err := compile(q)
	if err != nil {
		return res, err
	}
	p := choosePlan(c)
	needMeta := c.metaFiltersSet(p.name)
	err = s.db.View(func(tx *bolt.Tx) error {
		items := tx.Bucket(bucketItems)
		// match decides one index entry; it returns the parsed hit.
		match := func(k, v []byte, sep int) (hit, bool, error) {
			inv, id, ok := splitKey(k, sep)
			if !ok {
				return hit{}, false, fmt.Errorf("bad index key %q", k)
			}
			ok, nm := c.matchSummary(inv, v)
			if !ok {
				return hit{}, false, nil
			}
			if needMeta || nm {
				rec := items.Get(id)
				if rec == nil {
					return hit{}, false, fmt.Errorf("index entry for missing %q", id)
				}
				mp, _, err := splitValue(rec)
				if err != nil {
					return hit{}, false, err
				}
				m, _, err := decodeMeta(mp)
				if err != nil {
					return hit{}, false, err
				}
				if !c.matchMeta(m) {
					return hit{}, false, nil
				}
			}
			return hit{inv: inv, dur: int64(binary.BigEndian.Uint64(v)), id: string(id)}, true, nil
		}
		var page []string
		var err error
		if !p.number && (c.Sort == SortStart || c.Sort == SortStartAsc) {
			page, err = streamPage(ctx, tx.Bucket(p.bucket), p.field, c, match, &res)
		} else {
			page, err = collectPage(ctx, tx.Bucket(p.bucket), p, c, match, &res)
		}
		if err != nil {
			return err
		}
		res.Items = make([]Interaction, len(page))
		for i, id := range page {
			if err := getTx(tx, id, &res.Items[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("store: search: %w", err)
	}
	return res, nil
}

type matchFunc func(k, v []byte, sep int) (hit, bool, error)

// streamPage walks one field of a start-ordered index in the requested
// direction, keeping the page and counting up to the cap.
func streamPage(ctx context.Context, b *bolt.Bucket, field string, c *compiled, match matchFunc, res *Result) ([]string, error) {
	prefix := append([]byte(field), 0)
	sep := len(prefix)
	want := c.Offset + c.Limit
	capAt := max(CountCap, want)
	var page []string
	n := 0
	visit := func(k, v []byte) (stop bool, err error) {
		h, ok, err := match(k, v, sep)
		if err != nil || !ok {
			return false, err
		}
		if n >= c.Offset && n < want {
			page = append(page, h.id)
		}
		n++
		if n > capAt {
			res.TotalCapped = true
			n = capAt
			return true, nil
		}
		return false, nil
	}
	cur := b.Cursor()
	var k, v []byte
	if c.Sort == SortStart {
		k, v = cur.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), c.invLo))
	} else {
		var upper []byte
		if c.invHi == ^uint64(0) {
			upper = append([]byte(field), 1)
		} else {
			upper = binary.BigEndian.AppendUint64(bytes.Clone(prefix), c.invHi+1)
		}
		if k, _ = cur.Seek(upper); k == nil {
			k, v = cur.Last()
		} else {
			k, v = cur.Prev()
		}
	}
	for i := 0; k != nil && bytes.HasPrefix(k, prefix); i++ {
		if i%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		inv, _, _ := splitKey(k, sep)
		if (c.Sort == SortStart && inv > c.invHi) || (c.Sort == SortStartAsc && inv < c.invLo) {
			break
		}
		stop, err := visit(k, v)
		if err != nil || stop {
			res.Total = n
			return page, err
		}
		if c.Sort == SortStart {
			k, v = cur.Next()
		} else {
			k, v = cur.Prev()
		}
	}
	res.Total = n
	return page, nil
}

// collectPage gathers every match of the plan, sorts them and cuts the
// page; the total is exact.
func collectPage(ctx context.Context, b *bolt.Bucket, p plan, c *compiled, match matchFunc, res *Result) ([]string, error) {
	var hits []hit
	var seen map[string]bool
	prefix := []byte(p.field)
	if p.number {
		seen = map[string]bool{}
	} else {
		prefix = append(prefix, 0)
	}
	cur := b.Cursor()
	start := prefix
	if !p.number {
		start = binary.BigEndian.AppendUint64(bytes.Clone(prefix), c.invLo)
	}
	i := 0
	for k, v := cur.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if i++; i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		sep := len(prefix)
		if p.number {
			sep = bytes.IndexByte(k, 0) + 1
		} else if inv, _, _ := splitKey(k, sep); inv > c.invHi {
			break
		}
		h, ok, err := match(k, v, sep)
		if err != nil {
			return nil, err
		}
		if !ok || (seen != nil && seen[h.id]) {
			continue
		}
		if seen != nil {
			seen[h.id] = true
		}
		hits = append(hits, h)
	}
	slices.SortFunc(hits, orderFunc(c.Sort))
	res.Total = len(hits)
	lo, hi := min(c.Offset, len(hits)), min(c.Offset+c.Limit, len(hits))
	page := make([]string, 0, hi-lo)
	for _, h := range hits[lo:hi] {
		page = append(page, h.id)
	}
	return page, nil
}

// orderFunc compares hits in a sort order: unprefixed descending with ties
// by ascending ID, "-" its exact reverse.
func orderFunc(sort string) func(a, b hit) int {
	byStart := func(a, b hit) int {
		return cmp.Or(cmp.Compare(a.inv, b.inv), cmp.Compare(a.id, b.id))
	}
	byDur := func(a, b hit) int {
		return cmp.Or(cmp.Compare(b.dur, a.dur), cmp.Compare(a.id, b.id))
	}
	switch sort {
	case SortStartAsc:
		return func(a, b hit) int { return byStart(b, a) }
	case SortDuration:
		return byDur
	case SortDurationAsc:
		return func(a, b hit) int { return byDur(b, a) }
	}
	return byStart
}
