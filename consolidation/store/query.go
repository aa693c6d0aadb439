package store

import (
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"callrec"
)

// Limits of a search page and of counting.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// CountCap bounds counting when results stream in start order: once
	// CountCap matches (and the requested page) are found the scan stops and
	// Result.TotalCapped is set. Searches sorted by duration, by number or by
	// ID always count exactly.
	CountCap = 10_000
	// MinNumberDigits is the shortest Query.Number accepted.
	MinNumberDigits = 3
)

// Sort orders accepted by Query.Sort. An unprefixed order is descending; a
// "-" prefix gives the exact reverse order. Ties break on ID.
const (
	SortStart       = "start"     // newest first (default)
	SortStartAsc    = "-start"    // oldest first
	SortDuration    = "duration"  // longest first
	SortDurationAsc = "-duration" // shortest first
)

// Query selects interactions. Zero fields do not filter; all set fields must
// match.
type Query struct {
	From, To  time.Time // Start in [From, To)
	Agent     string    // one of Agents
	Number    string    // digits found in From or To (see NumberSlack)
	Queue     string
	Direction string
	CallSID   string
	TaskSID   string
	INUM      callrec.INUM
	// MinDuration and MaxDuration bound the duration, both inclusive.
	MinDuration, MaxDuration time.Duration
	Status                   string
	Tags                     []string // every tag must be present
	// Teams matches an interaction one of whose Teams is listed (any of).
	// Nil or empty does not filter: a caller scoping a user to their teams
	// must not pass an empty list for a user with no team.
	Teams         []string
	Sort          string
	Limit, Offset int
}

// Result is one page of a search.
type Result struct {
	Items []Interaction `json:"items"`
	// Total counts all matches, or is a lower bound when TotalCapped.
	Total       int  `json:"total"`
	TotalCapped bool `json:"total_capped,omitempty"`
}

// compiled is a validated query with precomputed comparison values.
type compiled struct {
	Query
	numDigits    string
	invLo, invHi uint64 // inclusive range of inverted starts
	minMS, maxMS int64  // maxMS < 0: no upper bound
	dirCode      byte
	statusCode   byte
}

func compile(q Query) (*compiled, error) {
	c := &compiled{Query: q, invLo: 0, invHi: ^uint64(0), maxMS: -1}
	switch q.Sort {
	case "":
		c.Sort = SortStart
	case SortStart, SortStartAsc, SortDuration, SortDurationAsc:
	default:
		return nil, callrec.Errorf(callrec.EINVALID, "unknown sort %q", q.Sort)
	}
	switch {
	case q.Limit == 0:
		c.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return nil, callrec.Errorf(callrec.EINVALID, "limit %d out of range 1..%d", q.Limit, MaxLimit)
	}
	if q.Offset < 0 {
		return nil, callrec.Errorf(callrec.EINVALID, "negative offset")
	}
	// A NUL would let an index prefix match another value's keys.
	for _, f := range slices.Concat([]string{q.Agent, q.Queue, q.Direction, q.CallSID, q.TaskSID,
		string(q.INUM), q.Status}, q.Tags, q.Teams) {
		if strings.IndexByte(f, 0) >= 0 {
			return nil, callrec.Errorf(callrec.EINVALID, "NUL byte in a filter value")
		}
	}
	if len(q.Teams) > 0 {
		c.Teams = slices.Compact(slices.Sorted(slices.Values(q.Teams)))
	}
	if q.Number != "" {
		c.numDigits = digits(q.Number)
		if len(c.numDigits) < MinNumberDigits {
			return nil, callrec.Errorf(callrec.EINVALID, "number %q: want at least %d digits", q.Number, MinNumberDigits)
		}
	}
	if !q.From.IsZero() {
		c.invHi = invStart(q.From)
	}
	if !q.To.IsZero() {
		t := invStart(q.To)
		if t == ^uint64(0) {
			return nil, callrec.Errorf(callrec.EINVALID, "time range end is too early")
		}
		c.invLo = t + 1
	}
	if q.MinDuration < 0 || q.MaxDuration < 0 {
		return nil, callrec.Errorf(callrec.EINVALID, "negative duration bound")
	}
	c.minMS = q.MinDuration.Milliseconds()
	if q.MaxDuration > 0 {
		c.maxMS = q.MaxDuration.Milliseconds()
	}
	c.dirCode = directionCodes[q.Direction]
	c.statusCode = statusCodes[q.Status]
	return c, nil
}

// matchSummary checks the filters an index summary can decide. needMeta
// reports filters it could not decide (unknown direction or status values).
func (c *compiled) matchSummary(inv uint64, v []byte) (ok, needMeta bool) {
	if inv < c.invLo || inv > c.invHi || len(v) < 10 {
		return false, false
	}
	d := int64(binary.BigEndian.Uint64(v))
	if d < c.minMS || (c.maxMS >= 0 && d > c.maxMS) {
		return false, false
	}
	if c.Direction != "" {
		if c.dirCode == 0 {
			needMeta = true
		} else if v[8] != c.dirCode {
			return false, false
		}
	}
	if c.Status != "" {
		if c.statusCode == 0 {
			needMeta = true
		} else if v[9] != c.statusCode {
			return false, false
		}
	}
	return true, needMeta
}

// metaFiltersSet reports whether any filter needs the record beyond what
// the plan's index (skip) and the summary decide.
func (c *compiled) metaFiltersSet(skip string) bool {
	check := map[string]bool{
		"agent": c.Agent != "", "number": c.Number != "", "queue": c.Queue != "",
		"call": c.CallSID != "", "task": c.TaskSID != "", "inum": c.INUM != "",
		"team": len(c.Teams) > 0,
	}
	delete(check, skip)
	for _, v := range check {
		if v {
			return true
		}
	}
	// The tag index decides only the first tag.
	return len(c.Tags) > 1 || (len(c.Tags) == 1 && skip != "tag")
}

// hasTeam reports whether team is one of the query's (sorted) teams.
func (c *compiled) hasTeam(team string) bool {
	_, ok := slices.BinarySearch(c.Teams, team)
	return ok
}

// matchMeta checks every filter against a record.
func (c *compiled) matchMeta(m *meta) bool {
	switch {
	case c.Agent != "" && !slices.Contains(m.Agents, c.Agent),
		c.Queue != "" && m.Queue != c.Queue,
		c.Direction != "" && m.Direction != c.Direction,
		c.Status != "" && m.Status != c.Status,
		c.CallSID != "" && m.CallSID != c.CallSID,
		c.TaskSID != "" && m.TaskSID != c.TaskSID,
		c.INUM != "" && !slices.Contains(m.INUMs, string(c.INUM)),
		c.numDigits != "" && !numberMatches(m.From, c.numDigits) && !numberMatches(m.To, c.numDigits),
		len(c.Teams) > 0 && !slices.ContainsFunc(m.Teams, c.hasTeam):
		return false
	}
	for _, t := range c.Tags {
		if !slices.Contains(m.Tags, t) {
			return false
		}
	}
	return true
}
