package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"callrec"

	bbolt "go.etcd.io/bbolt"
)

// Limits on Filter.Limit.
const (
	DefaultLimit = 100  // used when Filter.Limit is 0
	MaxLimit     = 1000 // larger limits are refused
)

// Filter selects audit entries for Find. Zero fields match everything.
type Filter struct {
	From, To time.Time   // From <= Time < To
	Types    []EventType // any of these types
	Actor    string      // exactly this actor
	Target   string      // exactly this target
	Limit    int         // page size: 0 means DefaultLimit, at most MaxLimit
	Offset   int         // entries to skip (after filtering)
}

// match reports whether e passes f.
func (f Filter) match(e Entry) bool {
	switch {
	case !f.From.IsZero() && e.Time.Before(f.From):
		return false
	case !f.To.IsZero() && !e.Time.Before(f.To):
		return false
	case len(f.Types) > 0 && !slices.Contains(f.Types, e.Type):
		return false
	case f.Actor != "" && e.Actor != f.Actor:
		return false
	case f.Target != "" && e.Target != f.Target:
		return false
	}
	return true
}

// Find returns the entries matching f, newest (highest Seq) first, one page
// of at most f.Limit after skipping f.Offset, and the total number of
// matches. It scans the whole log; entries are not checked against their
// hashes here (use Verify for that).
func (l *Log) Find(ctx context.Context, f Filter) ([]Entry, int, error) {
	switch {
	case f.Limit < 0 || f.Offset < 0:
		return nil, 0, callrec.Errorf(callrec.EINVALID, "audit: negative limit or offset")
	case f.Limit > MaxLimit:
		return nil, 0, callrec.Errorf(callrec.EINVALID, "audit: limit %d above %d", f.Limit, MaxLimit)
	case f.Limit == 0:
		f.Limit = DefaultLimit
	}
	for _, t := range f.Types {
		if !t.Valid() {
			return nil, 0, callrec.Errorf(callrec.EINVALID, "audit: unknown event type %q", t)
		}
	}
	var (
		out   []Entry
		total int
	)
	err := l.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		n := 0
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode entry %x: %w", k, err)
			}
			if !f.match(e) {
				continue
			}
			if total >= f.Offset && len(out) < f.Limit {
				out = append(out, e)
			}
			total++
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: find: %w", err)
	}
	return out, total, nil
}
