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
	// fields are the index values scanned. A number plan has one: reversed
	// digits, scanned as a key prefix in no useful order. Other plans scan
	// each field 0x00 over the start range, merged in start order (see
	// startIter), and yield the interactions having any of the fields.
	fields []string
	number bool
}

// choosePlan picks the most selective index the query allows: exact IDs,
// then agent, customer number, a single team, queue, tag, several teams,
// status, direction, and finally the time index. Except for the number
// index, keys carry the start, so a time range narrows them as well.
//
// Teams. Supervisors always filter by team, so most of their searches run
// one of the team plans. One team is coarser than an agent or a customer
// number but goes before queue, tag, status and direction: with the team
// index, status and direction are decided by the key's summary, while their
// indexes would need a record read per entry for the team check; a queue or
// tag value is taken to be no narrower than a team (a queue is served by
// several teams), and the other filter costs a record read either way.
//
// Several teams are served by a k-way merge of their index ranges in start
// order (startIter). It reads only calls of those teams, decides the team
// filter without reading records and, like a single range, streams: a
// start-sorted page stops at CountCap. The alternative, the time index with
// a residual team check, reads and decodes every record in the range (with
// 3 of 20 teams, about 7 record reads per match). A union of teams is
// coarser than one queue or tag value, so those go first; it still beats the
// status and direction indexes for the reason above.
func choosePlan(c *compiled) plan {
	one := func(name string, b []byte, field string) plan {
		return plan{name: name, bucket: b, fields: []string{field}}
	}
	switch {
	case c.INUM != "":
		return one("inum", bucketINUM, string(c.INUM))
	case c.CallSID != "":
		return one("call", bucketCall, c.CallSID)
	case c.TaskSID != "":
		return one("task", bucketTask, c.TaskSID)
	case c.Agent != "":
		return one("agent", bucketAgent, c.Agent)
	case c.numDigits != "":
		return plan{name: "number", bucket: bucketNumber, fields: []string{reverse(c.numDigits)}, number: true}
	case len(c.Teams) == 1:
		return one("team", bucketTeam, c.Teams[0])
	case c.Queue != "":
		return one("queue", bucketQueue, c.Queue)
	case len(c.Tags) > 0:
		return one("tag", bucketTag, c.Tags[0])
	case len(c.Teams) > 1:
		return plan{name: "team", bucket: bucketTeam, fields: c.Teams}
	case c.Status != "":
		return one("status", bucketStatus, c.Status)
	case c.Direction != "":
		return one("direction", bucketDir, c.Direction)
	}
	return one("time", bucketTime, "")
}

// hit is one matching interaction. id points into the index key, valid
// until the read transaction ends.
type hit struct {
	inv uint64
	dur int64
	id  []byte
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
			return hit{inv: inv, dur: int64(binary.BigEndian.Uint64(v)), id: id}, true, nil
		}
		var page []string
		var err error
		b := tx.Bucket(p.bucket)
		switch {
		case p.number:
			page, err = collectPage(ctx, numberSource(b, p.fields[0]), true, c, match, &res)
		case c.Sort == SortStart || c.Sort == SortStartAsc:
			page, err = streamPage(ctx, newStartIter(b, p.fields, c).next, c, match, &res)
		default:
			page, err = collectPage(ctx, newStartIter(b, p.fields, c).next, false, c, match, &res)
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

// source yields index entries, k nil when done; sep is the length of the
// key's field part with its 0x00.
type source func() (k, v []byte, sep int)

// streamPage reads entries in the requested start order, keeping the page
// and counting up to the cap.
func streamPage(ctx context.Context, next source, c *compiled, match matchFunc, res *Result) ([]string, error) {
	want := c.Offset + c.Limit
	capAt := max(CountCap, want)
	var page []string
	n := 0
	for i := 1; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k, v, sep := next()
		if k == nil {
			break
		}
		h, ok, err := match(k, v, sep)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if n >= c.Offset && n < want {
			page = append(page, string(h.id))
		}
		if n++; n > capAt {
			res.TotalCapped = true
			n = capAt
			break
		}
	}
	res.Total = n
	return page, nil
}

// collectPage counts every match and keeps the first Offset+Limit in the
// sort order in a bounded heap, then cuts the page; the total is exact.
// dedupe drops repeated IDs (a number index holds several keys per
// interaction).
func collectPage(ctx context.Context, next source, dedupe bool, c *compiled, match matchFunc, res *Result) ([]string, error) {
	var seen map[string]bool
	if dedupe {
		seen = map[string]bool{}
	}
	top := topK{k: c.Offset + c.Limit, cmp: orderFunc(c.Sort)}
	n := 0
	for i := 1; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k, v, sep := next()
		if k == nil {
			break
		}
		h, ok, err := match(k, v, sep)
		if err != nil {
			return nil, err
		}
		if !ok || (seen != nil && seen[string(h.id)]) {
			continue
		}
		if seen != nil {
			seen[string(h.id)] = true
		}
		n++
		top.add(h)
	}
	res.Total = n
	hits := top.sorted()
	page := make([]string, 0, len(hits)-min(c.Offset, len(hits)))
	for _, h := range hits[min(c.Offset, len(hits)):] {
		page = append(page, string(h.id))
	}
	return page, nil
}

// topK keeps the k first hits in an order. It is a heap with the last kept
// hit at the root, so once full most hits cost one comparison, and sorting
// touches k hits instead of every match.
type topK struct {
	k   int
	cmp func(a, b hit) int
	h   []hit
}

func (t *topK) add(x hit) {
	if len(t.h) < t.k {
		t.h = append(t.h, x)
		for i := len(t.h) - 1; i > 0; {
			p := (i - 1) / 2
			if t.cmp(t.h[i], t.h[p]) <= 0 {
				break
			}
			t.h[i], t.h[p] = t.h[p], t.h[i]
			i = p
		}
		return
	}
	if t.k == 0 || t.cmp(x, t.h[0]) >= 0 {
		return
	}
	t.h[0] = x
	for i := 0; ; {
		j := 2*i + 1
		if j >= len(t.h) {
			break
		}
		if r := j + 1; r < len(t.h) && t.cmp(t.h[r], t.h[j]) > 0 {
			j = r
		}
		if t.cmp(t.h[j], t.h[i]) <= 0 {
			break
		}
		t.h[i], t.h[j] = t.h[j], t.h[i]
		i = j
	}
}

// sorted returns the kept hits in order.
func (t *topK) sorted() []hit {
	slices.SortFunc(t.h, t.cmp)
	return t.h
}

// numberSource yields every key of the number index starting with the
// reversed query digits rev.
func numberSource(b *bolt.Bucket, rev string) source {
	cur := b.Cursor()
	prefix := []byte(rev)
	var k, v []byte
	started, done := false, false
	return func() ([]byte, []byte, int) {
		switch {
		case done:
			return nil, nil, 0
		case !started:
			started = true
			k, v = cur.Seek(prefix)
		default:
			k, v = cur.Next()
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			done = true
			return nil, nil, 0
		}
		return k, v, bytes.IndexByte(k, 0) + 1
	}
}

// orderFunc compares hits in a sort order: unprefixed descending with ties
// by ascending ID, "-" its exact reverse.
func orderFunc(sort string) func(a, b hit) int {
	// Not cmp.Or: it would compare the IDs every time, not just on ties.
	byStart := func(a, b hit) int {
		if c := cmp.Compare(a.inv, b.inv); c != 0 {
			return c
		}
		return bytes.Compare(a.id, b.id)
	}
	byDur := func(a, b hit) int {
		if c := cmp.Compare(b.dur, a.dur); c != 0 {
			return c
		}
		return bytes.Compare(a.id, b.id)
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
