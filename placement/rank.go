package placement

import (
	"cmp"
	"slices"

	"callrec"
)

// rankPair orders the recorders for a copy of a dual-stream pair by
// rendezvous (highest random weight) hashing of the call, the pair's group
// and the recorder's name (hash64). The copies of a pair reach different adapters,
// which never talk to each other; ranking on what they share (the call, the
// group, the membership's list) and on nothing local (no per-adapter
// counts, no adapter id) makes every adapter with the same membership view
// put the copies on the same recorder, so that recorder can merge them.
// When a recorder joins or leaves, only the pairs ranking it first move.
//
// Recorders known to be full (Free == 0) are left out, unless all are: a
// full recorder still beats recording nowhere.
func rankPair(recs []Recorder, info callrec.StreamInfo) []Recorder {
	type ranked struct {
		rec    Recorder
		weight uint64
	}
	var withRoom, all []ranked
	for _, r := range recs {
		x := ranked{rec: r, weight: hash64(info.CallSID, info.Pair.Group, r.Name)}
		all = append(all, x)
		if r.Free != 0 {
			withRoom = append(withRoom, x)
		}
	}
	if len(withRoom) == 0 {
		withRoom = all
	}
	slices.SortFunc(withRoom, func(a, b ranked) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		return cmp.Compare(a.rec.Name, b.rec.Name)
	})
	out := make([]Recorder, len(withRoom))
	for i, x := range withRoom {
		out[i] = x.rec
	}
	return out
}

// hash64 is FNV-1a 64 of the parts joined by NUL bytes (no part holds one:
// SIDs, group names and member names are printable), finished with
// MurmurHash3's fmix64. FNV-1a alone barely carries its last bytes into
// the high bits, and recorder names differ only in their last byte
// (recorder-0, recorder-1, …): ranked by plain FNV-1a, recorder-2 came
// first for half of all pairs and adapter-1..3 all tied toward the same
// recorder. Written out, not with hash/fnv, so ranking allocates nothing.
func hash64(parts ...string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i, s := range parts {
		if i > 0 {
			h *= prime64 // the NUL byte: h ^= 0 is a no-op
		}
		for j := 0; j < len(s); j++ {
			h ^= uint64(s[j])
			h *= prime64
		}
	}
	return fmix64(h)
}

// fmix64 is MurmurHash3's 64-bit finalizer: every input bit flips each
// output bit with probability about 1/2.
func fmix64(z uint64) uint64 {
	z ^= z >> 33
	z *= 0xff51afd7ed558ccd
	z ^= z >> 33
	z *= 0xc4ceb9fe1a85ec53
	z ^= z >> 33
	return z
}
