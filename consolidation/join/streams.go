package join

import (
	"cmp"
	"slices"
	"time"

	"callrec"
	"callrec/consolidation/store"
)

// A call's recordings, seen per stream.
//
// One Media Stream can give several recordings, which are not consecutive
// parts of the call in the same way:
//   - replicas (dual recording): the adapter writes the stream to two
//     recorders at once; each recording holds the whole audio;
//   - failover continuations (PreviousINUM): the stream moved to another
//     recorder, which continues it under a new INUM, with no restart;
//   - merged recordings (dual-stream capture): one recording holds the
//     audio of several streams (copies), each named in its accounting.
//
// All of these share a stream SID, so a streamGroup is the recordings
// connected by a shared stream SID (their own or a copy's) or by a
// PreviousINUM link. A replacement stream, started by the tracker after a
// stream failed (restart_of), has a new SID: it is a group of its own that
// replaces the failed one, with the audio between them lost.

// streamGroup is the recordings of one stream (or one merged pair).
type streamGroup struct {
	recs     []RecSummary // in Build's order (start, INUM)
	sids     []string     // every stream SID of the group
	replicas []replicaLine
	status   string // the best replica's
	// restartOf is the failed stream SID this group replaces ("" if none).
	restartOf string
}

// replicaLine is one replica of a stream: its recording and the
// recordings continuing it after failovers, in start order.
type replicaLine struct {
	replica int
	recs    []RecSummary
	status  string
}

// completenessRank orders the completeness of one replica, best first.
func completenessRank(s string) int {
	switch s {
	case store.StatusComplete:
		return 0
	case store.StatusPartial:
		return 1
	case store.StatusRecording:
		return 2
	}
	return 3 // interrupted
}

// groupStreams groups recs (sorted as Build sorts them) into streams, in
// the order of each group's first recording.
func groupStreams(recs []RecSummary) []*streamGroup {
	// Union-find over recording indexes.
	parent := make([]int, len(recs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if ra > rb { // the root is the earliest recording: a stable order
			ra, rb = rb, ra
		}
		parent[rb] = ra
	}
	bySID := map[string]int{}
	byINUM := map[callrec.INUM]int{}
	for i, r := range recs {
		byINUM[r.INUM] = i
	}
	for i, r := range recs {
		for _, sid := range sidsOf(r) {
			if j, ok := bySID[sid]; ok {
				union(i, j)
			} else {
				bySID[sid] = i
			}
		}
		if j, ok := byINUM[r.PreviousINUM]; ok && r.PreviousINUM != "" {
			union(i, j)
		}
	}
	var out []*streamGroup
	byRoot := map[int]*streamGroup{}
	for i, r := range recs {
		root := find(i)
		g := byRoot[root]
		if g == nil {
			g = &streamGroup{}
			byRoot[root] = g
			out = append(out, g)
		}
		g.recs = append(g.recs, r)
		for _, sid := range sidsOf(r) {
			if !slices.Contains(g.sids, sid) {
				g.sids = append(g.sids, sid)
			}
		}
		if g.restartOf == "" && r.RestartOf != "" {
			g.restartOf = r.RestartOf
		}
	}
	for _, g := range out {
		if slices.Contains(g.sids, g.restartOf) {
			// The replacement joined a recording that holds the failed
			// stream too (a merged recording on another replica's
			// recorder): the group replaces nothing outside itself.
			g.restartOf = ""
		}
		g.split()
	}
	return out
}

// sidsOf lists a recording's stream SIDs: its stream's and its copies'.
func sidsOf(r RecSummary) []string {
	var out []string
	if r.StreamSID != "" {
		out = append(out, r.StreamSID)
	}
	for _, s := range r.CopySIDs {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// split divides the group into its replicas and rates each; the group's
// status is its best replica's: a stream is complete when one replica is.
func (g *streamGroup) split() {
	for _, r := range g.recs {
		i := slices.IndexFunc(g.replicas, func(l replicaLine) bool { return l.replica == r.Replica })
		if i < 0 {
			g.replicas = append(g.replicas, replicaLine{replica: r.Replica})
			i = len(g.replicas) - 1
		}
		g.replicas[i].recs = append(g.replicas[i].recs, r)
	}
	slices.SortFunc(g.replicas, func(a, b replicaLine) int { return cmp.Compare(a.replica, b.replica) })
	for i := range g.replicas {
		g.replicas[i].status = lineStatus(g.replicas[i].recs)
	}
	g.status = g.preferred().status
}

// preferred is the replica to play: the best status, then the lowest
// replica number.
func (g *streamGroup) preferred() *replicaLine {
	best := &g.replicas[0]
	for i := range g.replicas[1:] {
		l := &g.replicas[i+1]
		if completenessRank(l.status) < completenessRank(best.status) {
			best = l
		}
	}
	return best
}

// lineStatus is the completeness of one replica: recording while any of
// its recordings is being written; interrupted when a recording ended
// without stop and nothing continued it; partial when a failover
// continuation, or a replacement stream that joined the replica, continued
// an interrupted recording (audio may be missing at the switch); complete
// otherwise.
func lineStatus(recs []RecSummary) string {
	continued := map[callrec.INUM]bool{}
	for _, r := range recs {
		if !r.Stopped {
			return store.StatusRecording
		}
		if r.PreviousINUM != "" {
			continued[r.PreviousINUM] = true
		}
	}
	restarted := func(r RecSummary) bool {
		sids := sidsOf(r)
		return slices.ContainsFunc(recs, func(x RecSummary) bool { return x.RestartOf != "" && slices.Contains(sids, x.RestartOf) })
	}
	st := store.StatusComplete
	for _, r := range recs {
		if r.State == callrec.StateInterrupted {
			if !continued[r.INUM] && !restarted(r) {
				return store.StatusInterrupted
			}
			st = store.StatusPartial
		}
	}
	return st
}

// replaces reports whether g replaces the failed stream f.
func (g *streamGroup) replaces(f *streamGroup) bool {
	return g != f && g.restartOf != "" && slices.Contains(f.sids, g.restartOf)
}

// recordingStatus is the completeness of a call's recordings: recording
// while any is being written; interrupted when a stream has no complete
// replica and was not replaced; partial when a stream was replaced (the
// audio between the failure and the replacement is lost) or only a
// failover continuation completed it; complete otherwise. A replica that
// was interrupted while its twin completed does not count against the call.
func recordingStatus(gs []*streamGroup) string {
	if len(gs) == 0 {
		return ""
	}
	for _, g := range gs {
		for _, r := range g.recs {
			if !r.Stopped {
				return store.StatusRecording
			}
		}
	}
	interrupted, partial := false, false
	for _, g := range gs {
		if g.restartOf != "" {
			partial = true
		}
		switch g.status {
		case store.StatusPartial:
			partial = true
		case store.StatusInterrupted:
			if slices.ContainsFunc(gs, func(x *streamGroup) bool { return x.replaces(g) }) {
				partial = true
			} else {
				interrupted = true
			}
		}
	}
	switch {
	case interrupted:
		return store.StatusInterrupted
	case partial:
		return store.StatusPartial
	}
	return store.StatusComplete
}

// replicaSets lists the streams recorded in several replicas (any
// recording with a replica number), each with the recording to play.
func replicaSets(gs []*streamGroup) []store.ReplicaSet {
	var out []store.ReplicaSet
	for _, g := range gs {
		if !slices.ContainsFunc(g.recs, func(r RecSummary) bool { return r.Replica > 0 }) {
			continue
		}
		set := store.ReplicaSet{StreamSID: g.recs[0].StreamSID, Preferred: g.preferred().recs[0].INUM}
		for _, l := range g.replicas {
			rp := store.Replica{Replica: l.replica, Status: l.status}
			for _, r := range l.recs {
				rp.INUMs = append(rp.INUMs, r.INUM)
			}
			set.Replicas = append(set.Replicas, rp)
		}
		out = append(out, set)
	}
	return out
}

// alternates returns the recordings of replicas other than the preferred
// one: they duplicate audio another recording already covers.
func alternates(gs []*streamGroup) map[callrec.INUM]bool {
	out := map[callrec.INUM]bool{}
	for _, g := range gs {
		best := g.preferred()
		for i := range g.replicas {
			if l := &g.replicas[i]; l != best {
				for _, r := range l.recs {
					out[r.INUM] = true
				}
			}
		}
	}
	return out
}

// streamStart is when a recording's stream started (the recording's own
// start when the recorder did not say).
func (r RecSummary) streamStart() time.Time {
	if !r.StreamStartedAt.IsZero() {
		return r.StreamStartedAt
	}
	return r.StartedAt
}

// audioStart and audioEnd are the times of a recording's first sample and
// of the end of its last one.
func (r RecSummary) audioStart() time.Time {
	return r.streamStart().Add(time.Duration(r.AudioOffsetMS) * time.Millisecond)
}

func (r RecSummary) audioEnd() time.Time {
	return r.audioStart().Add(time.Duration(r.AudioDurationMS) * time.Millisecond)
}

// restartGaps measures, for each failed stream that was replaced, the audio
// lost between them: from the end of the failed stream's audio (the latest
// end among its replicas and continuations) to the start of the earliest
// replacement's audio. A gap is known only once every recording of the
// failed stream has stopped (before, its audio may still grow). Replicas
// and failover continuations share a stream and give no gap.
func restartGaps(gs []*streamGroup) []store.RestartGap {
	var out []store.RestartGap
	for _, f := range gs {
		if slices.ContainsFunc(f.recs, func(r RecSummary) bool { return !r.Stopped }) {
			continue
		}
		var from, to *RecSummary
		failed := ""
		for i := range f.recs {
			if r := &f.recs[i]; from == nil || r.audioEnd().After(from.audioEnd()) {
				from = r
			}
		}
		for _, g := range gs {
			if !g.replaces(f) {
				continue
			}
			for i := range g.recs {
				if r := &g.recs[i]; to == nil || r.audioStart().Before(to.audioStart()) {
					to, failed = r, g.restartOf
				}
			}
		}
		if from == nil || to == nil {
			continue
		}
		start, end := from.audioEnd(), to.audioStart()
		if end.Before(start) { // clocks of two adapters disagree: no measurable loss
			end = start
		}
		// The failed stream is the one the replacement names: in a merged
		// recording, a copy other than the recording's first.
		out = append(out, store.RestartGap{FromINUM: from.INUM, ToINUM: to.INUM,
			FromStreamSID: failed, ToStreamSID: to.StreamSID,
			Start: start, End: end, DurationMS: end.Sub(start).Milliseconds(), Cause: store.GapStreamRestart})
	}
	return out
}
