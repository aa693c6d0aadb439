package mediaadapter

import (
	"callrec"
	"callrec/internal/link"
)

// Opener opens a stream to a recorder (a *link.Client, a placement.Placer).
// Open must not block: the read loop of Twilio's socket calls it.
type Opener interface {
	Open(info callrec.StreamInfo) *link.Stream
}

// ReplicaOpener opens the replicas of a stream for dual recording: n copies
// with info.Replica 1..n, each on a different recorder. It returns at least
// one stream, and fewer than n when fewer recorders are available: the
// stream is then recorded fewer times, and the session warns and counts it
// (callrec_media_dual_recording_single_total) rather than keep a replica
// waiting, for a recorder that may not come, in memory. It must not block.
type ReplicaOpener interface {
	OpenReplicas(info callrec.StreamInfo, n int) []*link.Stream
}

// Replicas is dual recording without a pool: one Opener per recorder (a
// *link.Client each), replica i on the i-th. There is no failover between
// them: a replica whose recorder is down waits in its own retention budget
// until that recorder is back, and drops frames (overflow gaps in that
// replica only) past it. Open uses the first.
type Replicas []Opener

var _ ReplicaOpener = Replicas(nil)

// Open opens the stream on the first recorder.
func (rs Replicas) Open(info callrec.StreamInfo) *link.Stream { return rs[0].Open(info) }

// OpenReplicas opens replica i (1-based) on the i-th recorder.
func (rs Replicas) OpenReplicas(info callrec.StreamInfo, n int) []*link.Stream {
	out := make([]*link.Stream, 0, n)
	for i, o := range rs[:min(max(n, 1), len(rs))] {
		info.Replica = i + 1
		out = append(out, o.Open(info))
	}
	return out
}
