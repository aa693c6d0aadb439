package lb

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"callrec"
)

// pairSegment introduces the pair part of a dual-stream copy's path:
// <Path>/pair/<group>/<copy>.
const pairSegment = "/pair/"

// maxGroup bounds a pair's group, as callrec.PairFromParams does.
const maxGroup = 256

// pair is the dual-stream copy an upgrade's path names.
type pair struct {
	group string // the pair's group (the tracker's stream name), unescaped
	copy  int    // 1..callrec.MaxCopies
}

// parsePair reads the pair from the escaped remainder of a path after
// <Path>/pair/: "<PathEscape(group)>/<copy>".
func parsePair(rest string) (pair, error) {
	g, k, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(k, "/") {
		return pair{}, errors.New("want <path>/pair/<group>/<copy>")
	}
	group, err := url.PathUnescape(g)
	if err != nil {
		return pair{}, fmt.Errorf("group: %w", err)
	}
	if group == "" || len(group) > maxGroup {
		return pair{}, fmt.Errorf("group: want 1..%d bytes, got %d", maxGroup, len(group))
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 || n > callrec.MaxCopies || strconv.Itoa(n) != k {
		return pair{}, fmt.Errorf("copy %q: want 1..%d", clip(k, 16), callrec.MaxCopies)
	}
	return pair{group: group, copy: n}, nil
}

// rank orders the candidates for a pair's group by rendezvous hashing:
// highest score(group, name) first, ties by name. It depends only on the
// group and the candidates' names, so every lb instance with the same view
// ranks alike; an adapter leaving the view removes itself from every ranking
// and changes nothing else in it, and one joining inserts itself only.
func rank(cands []candidate, group string) []candidate {
	type scored struct {
		c     candidate
		score uint64
	}
	s := make([]scored, len(cands))
	for i, c := range cands {
		s[i] = scored{c, score(group, c.c.name)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.c.c.name, b.c.c.name)
	})
	out := make([]candidate, len(s))
	for i := range s {
		out[i] = s[i].c
	}
	return out
}

// pickPair picks copy k's adapter: the k-th of the pair's ranking (wrapping
// around when there are fewer adapters than copies), or after failed
// attempts the next untried one after it.
func pickPair(cands []candidate, p pair) (choice, bool) {
	r := rank(cands, p.group)
	for i := range r {
		c := r[(p.copy-1+i)%len(r)]
		if !c.tried {
			return c.c, true
		}
	}
	return choice{}, false
}

// score is the rendezvous weight of an adapter for a group: FNV-1a over
// group, a zero byte and the name, then the splitmix64 finalizer (FNV alone
// spreads names that differ only at the end poorly).
func score(group, name string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(group); i++ {
		h = (h ^ uint64(group[i])) * prime
	}
	h *= prime // the zero byte between the two
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// clip shortens untrusted text for a log line or message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
