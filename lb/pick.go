package lb

import (
	"math/rand/v2"
	"net/url"
	"slices"
)

// Bounds of the peer factor (see "Selection" in the package doc).
const (
	// minShareSample is how many connections this lb must hold before it
	// estimates its share of the pool; below it the factor is 1.
	minShareSample = 20
	// maxPeerFactor caps the factor, so a restarted lb holding few of the
	// pool's streams still prefers an adapter the reports show as empty.
	maxPeerFactor = 8.0
)

// backendState is what the lb knows of one backend beyond the view.
type backendState struct {
	reported bool   // active holds a reported value
	active   int    // Active in the last view
	epoch    uint64 // bumped when a new report (a changed Active) arrives
	dialing  int    // this lb's upgrades sent to it and not yet answered
	fresh    int    // this lb's connections established in the current epoch and still open
	live     int    // all this lb's connections to it, dialing or established, any epoch
	seen     uint64 // view generation it was last part of
	badURL   bool   // its URL was unusable (logged once)
}

// choice is one pick: the backend, where to reach it, and once established
// the epoch its connection counts in.
type choice struct {
	name   string
	scheme string
	host   string
	epoch  uint64
}

// candidate is a backend that may take a new connection: in the view, not
// draining, with a usable URL.
type candidate struct {
	c     choice
	st    *backendState
	tried bool // already tried for this upgrade
}

// pick chooses a backend for an upgrade, skipping those in tried, and
// counts it as dialing until established or failed: for a copy of a
// dual-stream pair the next untried adapter of the pair's ranking (see
// rank), otherwise the least loaded one. The view is read under l.mu so
// that picks and reports are seen in one order.
func (l *LB) pick(tried []string, p *pair) (choice, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cands := l.scan(tried)
	var (
		best choice
		ok   bool
	)
	if p != nil {
		best, ok = pickPair(cands, *p)
	} else {
		best, ok = l.leastLoaded(cands)
	}
	if !ok {
		return choice{}, false
	}
	st := l.states[best.name]
	st.dialing++
	st.live++
	l.m.picks.WithLabelValues(best.name).Inc()
	return best, true
}

// scan reads the view, takes in new reports, updates the peer factor and
// returns the backends that may take a connection. l.mu is held.
func (l *LB) scan(tried []string) []candidate {
	view := l.cfg.Backends.Backends()
	l.gen++
	var (
		cands      []candidate
		reported   int // streams the view reports, every backend
		unreported int // this lb's established connections not in those reports yet
	)
	for _, b := range view {
		st := l.states[b.Name]
		if st == nil {
			st = &backendState{}
			l.states[b.Name] = st
		}
		if st.seen == l.gen {
			continue // a duplicate name: the first entry wins
		}
		st.seen = l.gen
		if !st.reported || st.active != b.Active {
			// A new report: it includes the connections this lb had
			// established, not those still being dialed.
			st.reported, st.active, st.fresh = true, b.Active, 0
			st.epoch++
		}
		reported += b.Active
		unreported += st.fresh
		if b.Draining {
			continue
		}
		scheme, host, ok := target(b.URL)
		if !ok {
			if !st.badURL {
				st.badURL = true
				u := "none"
				if b.URL != nil {
					u = b.URL.Redacted()
				}
				l.log.Warn("skip backend without a usable http(s):// or ws(s):// URL", logKeyBackend, b.Name, "url", u)
			}
			continue
		}
		cands = append(cands, candidate{choice{name: b.Name, scheme: scheme, host: host}, st, slices.Contains(tried, b.Name)})
	}
	l.forgetGone()
	l.peers = peerFactor(reported+unreported, l.proxied)
	return cands
}

// leastLoaded picks the untried candidate with the lowest load, ties broken
// at random. l.mu is held.
func (l *LB) leastLoaded(cands []candidate) (choice, bool) {
	var (
		best     choice
		bestLoad float64
		ties     int
	)
	for _, c := range cands {
		if c.tried {
			continue
		}
		load := float64(c.st.active) + l.peers*float64(c.st.dialing+c.st.fresh)
		switch {
		case ties == 0 || load < bestLoad:
			best, bestLoad, ties = c.c, load, 1
		case load == bestLoad:
			ties++ // reservoir sampling: each tied backend is chosen with probability 1/ties
			if rand.IntN(ties) == 0 {
				best = c.c
			}
		}
	}
	return best, ties > 0
}

// peerFactor estimates how many lbs like this one feed the pool: the
// pool's streams over this lb's, that is one over this lb's share.
func peerFactor(poolStreams, own int) float64 {
	if own < minShareSample {
		return 1
	}
	return min(max(float64(poolStreams)/float64(own), 1), maxPeerFactor)
}

// forgetGone drops the state of backends that left the view and hold no
// connection of this lb. l.mu is held.
func (l *LB) forgetGone() {
	for name, st := range l.states {
		if st.seen != l.gen && st.live == 0 {
			delete(l.states, name)
			l.m.forget(name)
		}
	}
}

// established records that the backend of ch accepted the upgrade: the
// connection counts as fresh until the next report.
func (l *LB) established(ch *choice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.states[ch.name] // kept while live > 0
	st.dialing--
	st.fresh++
	ch.epoch = st.epoch
	l.proxied++
}

// failed records that the backend of ch did not take the upgrade.
func (l *LB) failed(ch choice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.states[ch.name]
	st.dialing--
	st.live--
}

// ended records that an established connection is over.
func (l *LB) ended(ch choice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.states[ch.name]
	st.live--
	if st.epoch == ch.epoch && st.fresh > 0 {
		st.fresh-- // not in any report yet, and now gone
	}
	l.proxied--
}

// target returns the scheme and host to dial for a backend URL.
func target(u *url.URL) (scheme, host string, ok bool) {
	if u == nil || u.Host == "" {
		return "", "", false
	}
	switch u.Scheme {
	case "http", "ws":
		return "http", u.Host, true
	case "https", "wss":
		return "https", u.Host, true
	}
	return "", "", false
}
