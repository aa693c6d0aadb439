package placement

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"callrec"
)

// TestHash64 is FNV-1a 64 of the parts joined by NUL, then fmix64, as
// documented: adapters of different versions must rank pairs alike.
func TestHash64(t *testing.T) {
	for _, parts := range [][]string{{""}, {"rec-a"}, {"CA1", "grp", "rec-a"}, {"", "", ""}, {"adapter-7", "recorder-2"}} {
		h := fnv.New64a()
		h.Write([]byte(strings.Join(parts, "\x00")))
		if got, want := hash64(parts...), fmix64(h.Sum64()); got != want {
			t.Errorf("hash64(%q) = %#x, want fmix64(FNV-1a) %#x", parts, got, want)
		}
	}
	// A value computed independently (Python), so a change of the formula,
	// which would make adapters of two versions disagree on pairs, cannot
	// go unnoticed.
	if got, want := hash64("CA1", "grp", "rec-a"), uint64(0x22f550f7d326b7ae); got != want {
		t.Errorf("hash64(CA1, grp, rec-a) = %#x, want %#x", got, want)
	}
}

// TestRankPairSpreads: recorders whose names differ in their last byte
// each come first for about a third of the calls. Plain FNV-1a gave
// recorder-2 half of them.
func TestRankPairSpreads(t *testing.T) {
	recs := []Recorder{{Name: "recorder-0", Free: -1}, {Name: "recorder-1", Free: -1}, {Name: "recorder-2", Free: -1}}
	first := map[string]int{}
	const calls = 3000
	for i := range calls {
		info := callrec.StreamInfo{CallSID: fmt.Sprintf("CA%032x", i*7919), Pair: &callrec.StreamPair{Group: "callrec", Copy: 1, Copies: 2}}
		first[rankPair(recs, info)[0].Name]++
	}
	for _, r := range recs {
		if n := first[r.Name]; n < calls/3-150 || n > calls/3+150 {
			t.Errorf("%s ranked first for %d of %d calls, want %d±150 (all: %v)", r.Name, n, calls, calls/3, first)
		}
	}
}

// TestRankPairSkipsFull: a recorder known to be full ranks nowhere while
// another has room; when all are full, all rank.
func TestRankPairSkipsFull(t *testing.T) {
	info := callrec.StreamInfo{CallSID: "CA1", Pair: &callrec.StreamPair{Group: "g", Copy: 1, Copies: 2}}
	recs := []Recorder{{Name: "a", Free: 0}, {Name: "b", Free: 3}, {Name: "c", Free: -1}}
	got := rankPair(recs, info)
	if len(got) != 2 || got[0].Name == "a" || got[1].Name == "a" {
		t.Errorf("rankPair with a full = %v, want b and c only", got)
	}
	for i := range recs {
		recs[i].Free = 0
	}
	if got := rankPair(recs, info); len(got) != 3 {
		t.Errorf("rankPair with all full = %v, want all three", got)
	}
}
