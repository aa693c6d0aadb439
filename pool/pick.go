package pool

import (
	"hash/fnv"
	"math"
	"slices"
	"time"
)

// Pick returns the live, non-draining member of role with the most free
// capacity that exclude (which may be nil) does not reject, and counts the
// pick against it. It reports false when no member qualifies. RoleCLI
// members are never picked.
//
// Load is Active as last announced plus this pool's own picks of the member
// that the announcement does not include yet. Free capacity is Capacity
// minus load; members at or over their Capacity are skipped. Members with
// Capacity 0 (unknown) rank by least load after every member with free
// capacity, so they take the overflow.
//
// Why this spreads work when many pickers pick at once: gossip is a fraction
// of a second (or a refresh interval) behind, so every adapter sees the same
// stale loads, and plain least-loaded would send a burst to one member.
// Counting its own picks makes each picker balance its own work to within
// one stream per member however late gossip is. Each announcement carries
// the time it was made, and a picker forgets its picks made before that time
// (the announced Active includes them; with clock skew, a stamp later than
// the arrival counts as the arrival). A pick never announced within two
// refresh intervals and a second is forgotten, so a stream that never
// arrived does not count for ever. Equal loads are ordered by a hash of
// (picker name, member name): deterministic for one picker, but different
// across pickers, so adapters starting together send their first streams to
// different recorders instead of all to the alphabetically first. The total
// over all pickers is then within about one stream per picker of even.
// Random choice (or power of two choices) would be off by ±8 % at 100
// streams per member from chance alone.
func (p *Pool) Pick(role Role, exclude func(Member) bool) (Member, bool) {
	if role == RoleCLI || !role.Valid() {
		return Member{}, false
	}
	// exclude is the caller's code: run it without holding p.mu.
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Member{}, false
	}
	var cands []Member
	for _, e := range p.members {
		if pickable(e, role) {
			cands = append(cands, e.m)
		}
	}
	p.mu.Unlock()
	if exclude != nil {
		cands = slices.DeleteFunc(cands, exclude)
	}
	if len(cands) == 0 {
		return Member{}, false
	}

	now := time.Now()
	ttl := 2*p.cfg.RefreshInterval + time.Second
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		best      *entry
		bestScore int64
		bestTie   uint64
	)
	for _, c := range cands {
		e := p.members[c.Name]
		if e == nil || !pickable(e, role) { // changed since the first look
			continue
		}
		s, ok := score(e, now, ttl)
		if !ok {
			continue
		}
		tie := tieBreak(p.cfg.Name, e.m.Name)
		if best == nil || s > bestScore || s == bestScore && (tie > bestTie || tie == bestTie && e.m.Name < best.m.Name) {
			best, bestScore, bestTie = e, s, tie
		}
	}
	if best == nil {
		return Member{}, false
	}
	best.picks = slices.DeleteFunc(best.picks, func(t time.Time) bool { return now.Sub(t) > ttl })
	best.picks = append(best.picks, now)
	return best.m, true
}

// pickable reports whether e may be given new work of role.
func pickable(e *entry, role Role) bool {
	return e.m.State == StateAlive && e.m.Meta.Role == role && !e.m.Meta.Draining
}

// score ranks e for a new stream, higher is better; ok is false when e is
// full.
func score(e *entry, now time.Time, ttl time.Duration) (s int64, ok bool) {
	pending := 0
	for _, t := range e.picks {
		if now.Sub(t) <= ttl {
			pending++
		}
	}
	load := int64(e.m.Meta.Active)
	if load > math.MaxInt64-int64(pending) {
		load = math.MaxInt64
	} else {
		load += int64(pending)
	}
	if c := int64(e.m.Meta.Capacity); c > 0 {
		free := c - load
		return free, free > 0
	}
	return -load, true
}

// tieBreak orders equally loaded members differently for each picker.
func tieBreak(picker, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(picker))
	h.Write([]byte{0})
	h.Write([]byte(member))
	// FNV alone barely mixes the last bytes ("rec-1" vs "rec-2") into the
	// high bits; finish with splitmix64's mixer.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
