package recorder

import (
	"bytes"
	"hash/maphash"
	"time"

	"callrec"
	"callrec/internal/link"
)

// Dual-stream capture: the tracker starts two Twilio streams of the same
// call, placed on different media adapters, and both adapters send their
// stream here (placement ranks recorders by the pair, so every copy comes to
// the same one). The copies are merged into one recording:
//
//   - Each copy's chunks are mapped onto the recording's chunks by an offset
//     (the copies started at different moments, and each counts its chunks
//     from 1). The first copy to bring a frame is the origin; another copy's
//     offset is first estimated from the adapters' clocks (the time each
//     received Twilio's start), then found exactly by its audio: its frames
//     are held until a few of them match, each at exactly one place near the
//     estimate, the audio already recorded. Without a unique match within
//     alignMaxHeld frames the clock estimate is used, and said so.
//   - A chunk goes into the file from whichever copy brings it first; the
//     others' are redundant. A chunk no copy brought is a gap, as in a
//     recording of one stream. The accounting lists, per copy, what it
//     received and supplied, and per track which copy supplied which chunks.
//   - The recording ends when every copy has ended (stop, socket gone, its
//     adapter gone for ResumeGrace), or pairStopGrace after the first stop.
//
// A copy that started earlier than the origin brings chunks before the
// origin's first: the file starts only once every copy has joined (or
// pairWait has passed) and then begins at the earliest audio.
const (
	// pairHeadroom is the origin's first chunk on the recording's chunk
	// numbering: copies that started up to this many frames earlier fit
	// before it.
	pairHeadroom = 500 // 10 s
	// pairWait is how long the file's start waits for every copy to join
	// and be aligned: a copy that started earlier than the first one to
	// bring audio but joins later than this loses its audio from before
	// the file's start (counted as before_start).
	pairWait = 5 * time.Second
	// pairStopGrace is how long the other copies may run on after one
	// ended with stop (Twilio stops them within moments of each other).
	pairStopGrace = 3 * time.Second
	// alignSearch is how far (frames) from the clock estimate a copy's
	// audio is searched for.
	alignSearch = 50
	// alignVotes is how many frames must match at the same offset, with no
	// frame matching elsewhere as often.
	alignVotes = 3
	// alignMaxHeld bounds the records held while a copy is being aligned.
	alignMaxHeld = 100
	// ringSize is how many recent chunks per track are remembered (by
	// audio hash) for alignment: 40 s.
	ringSize = 2048
	// maxLive bounds the live streams merged into one recording (copies
	// and their restarts), maxSources all of them ever.
	maxLive    = 2 * callrec.MaxCopies
	maxSources = 64
	// endPairEnded is the end of a copy still streaming when its merged
	// recording ended (another copy stopped, this one did not follow
	// within pairStopGrace).
	endPairEnded = "pair_ended"
)

// pairState is a merged recording's state.
type pairState struct {
	key     string // in Node.byPair
	copies  int    // copies the tracker started
	created time.Time
	seed    maphash.Seed
	ring    [callrec.NumTracks][]ringEntry
	// supplier[t][chunk] is the copy that supplied the chunk (0: none).
	supplier [callrec.NumTracks][]uint8
	// origin's stream start and chunk offset: other copies' clock
	// estimates are relative to them.
	originStart time.Time
	originOff   int64
	hasOrigin   bool
	// tsSkew (ms) maps timestamps onto the recording's chunk times: the
	// origin's first frame's timestamp sits where its chunk puts it.
	tsSkew int64
	// early[t] is the lowest chunk a copy brought from before the file's
	// start, which could not be written (0: none).
	early  [callrec.NumTracks]uint32
	ready  bool // the file's start is chosen
	stopAt time.Time
}

type ringEntry struct {
	chunk uint32
	hash  uint64
}

// copyState is a pair copy's alignment and accounting.
type copyState struct {
	align    string // "" while being aligned
	off      int64  // its chunk c is the recording's chunk c+off
	offMS    int64
	held     []heldRecord
	joinedAt time.Time
	seen     [callrec.NumTracks]bitset

	received, supplied, redundant, before int64
}

// heldRecord is a frame or note held while its copy is being aligned.
type heldRecord struct {
	seq   uint64
	frame callrec.Frame // payload owned
	note  *link.Note
}

func (c *copyState) hold(h heldRecord) { c.held = append(c.held, h) }

// est is the clock estimate of the copy's offset.
func (c *copyState) est(r *recording) int64 { return r.pair.estimate(r.sourceOf(c)) }

func (r *recording) sourceOf(c *copyState) *source {
	for _, s := range r.srcs {
		if s.cp == c {
			return s
		}
	}
	return nil
}

func (p *pairState) estimate(s *source) int64 {
	if s == nil || !p.hasOrigin || s.info.StartedAt.IsZero() || p.originStart.IsZero() {
		return p.originOff
	}
	d := s.info.StartedAt.Sub(p.originStart)
	if d > 24*time.Hour || d < -24*time.Hour { // an adapter's clock is off: trust it not
		return p.originOff
	}
	frames := (d + 10*time.Millisecond) / (20 * time.Millisecond)
	if d < 0 {
		frames = (d - 10*time.Millisecond) / (20 * time.Millisecond)
	}
	return p.originOff + int64(frames)
}

func newPairState(key string, copies int) *pairState {
	p := &pairState{key: key, copies: copies, created: time.Now(), seed: maphash.MakeSeed()}
	for t := range p.ring {
		p.ring[t] = make([]ringEntry, ringSize)
	}
	return p
}

func (p *pairState) remember(t callrec.Track, chunk uint32, payload []byte) {
	p.ring[t][chunk%ringSize] = ringEntry{chunk: chunk, hash: maphash.Bytes(p.seed, payload)}
}

func (p *pairState) supply(t callrec.Track, chunk uint32, cp int) {
	s := p.supplier[t]
	if int(chunk) >= len(s) {
		ns := make([]uint8, max(int(chunk)+1, 2*len(s), 1024))
		copy(ns, s)
		s = ns
	}
	s[chunk] = uint8(cp)
	p.supplier[t] = s
}

// pairFrameLocked handles a frame of a pair copy.
func (r *recording) pairFrameLocked(s *source, f *callrec.Frame) {
	cp := s.cp
	if !r.pair.hasOrigin {
		// The first copy to bring a sound frame is the origin. A fresh
		// stream's chunk 1 goes at pairHeadroom+1; a continuation's first
		// chunk too.
		skew := (int64(f.Chunk)-1)*20 - int64(f.TimestampMS)
		if f.Chunk == 0 || f.Chunk > maxFirstChunk || skew > maxDrift/callrec.SamplesPerMS || skew < -maxDrift/callrec.SamplesPerMS || !r.declared[f.Track] {
			r.errorLocked(callrec.ErrKindBadField, "first frame of a pair: chunk or timestamp out of range")
			s.pending.push(f.Seq, 0)
			return
		}
		off := int64(pairHeadroom)
		if r.meta.PreviousINUM != "" {
			off = pairHeadroom + 1 - int64(f.Chunk)
		}
		r.pair.hasOrigin, r.pair.originStart, r.pair.originOff, r.pair.tsSkew = true, s.info.StartedAt, off, skew
		r.meta.Stream = s.info
		r.alignLocked(s, callrec.AlignOrigin, off)
	}
	if cp.align == "" {
		h := heldRecord{seq: f.Seq, frame: *f}
		h.frame.Payload = append([]byte(nil), f.Payload...)
		cp.hold(h)
		if off, ok := r.matchLocked(s); ok {
			r.alignLocked(s, callrec.AlignContent, off)
		} else if len(cp.held) >= alignMaxHeld {
			r.log.Warn("copy aligned by the adapters' clocks: its audio matched no unique place near the estimate",
				callrec.LogKeyStreamSID, s.info.StreamSID, "copy", s.info.Pair.Copy)
			r.alignLocked(s, callrec.AlignClock, cp.est(r))
		}
		return
	}
	r.placeCopyLocked(s, f)
}

// placeCopyLocked places an aligned copy's frame on the recording's chunks.
func (r *recording) placeCopyLocked(s *source, f *callrec.Frame) {
	cp := s.cp
	cp.received++
	if !r.declared[f.Track] {
		r.errorLocked(callrec.ErrKindBadField, "frame for track "+f.Track.String()+" the stream did not announce")
		s.pending.push(f.Seq, 0)
		return
	}
	if f.Chunk == 0 {
		r.errorLocked(callrec.ErrKindBadField, "chunk 0")
		s.pending.push(f.Seq, 0)
		return
	}
	c := int64(f.Chunk) + cp.off
	ts := int64(f.TimestampMS) + cp.off*20 + r.pair.tsSkew
	if c < 1 || ts < 0 || (r.pair.ready && (ts+20)*callrec.SamplesPerMS <= r.fileBase) {
		// Before the recording's timeline or its file: a copy that started
		// earlier than the first to bring audio and joined too late. Its
		// audio there is reported missing (pairTrackAccounting).
		cp.before++
		if e := &r.pair.early[f.Track]; c >= 1 && (*e == 0 || uint32(c) < *e) {
			*e = uint32(c)
		}
		s.pending.push(f.Seq, 0)
		return
	}
	if c > maxFirstChunk+pairHeadroom || ts > int64(maxFirstChunk+pairHeadroom)*20+maxDrift/callrec.SamplesPerMS {
		r.errorLocked(callrec.ErrKindBadField, "chunk or timestamp out of range")
		s.pending.push(f.Seq, 0)
		return
	}
	chunk := uint32(c)
	ts32 := &r.tracks[f.Track]
	if ts32.seen.has(chunk) {
		end := int64(0)
		if cp.seen[f.Track].has(chunk) {
			ts32.dups++ // the same copy sent it twice: a duplicate as in one stream (its first is ahead in this queue)
		} else {
			cp.redundant++
			// Another copy's audio of this chunk may not be on disk yet:
			// acknowledge this one only once everything placed is.
			end = r.win.hi[f.Track]
		}
		s.pending.push(f.Seq, end)
		return
	}
	if !ts32.started {
		// A track's first frame: near the other track's, or a bad
		// timestamp would make the window span the distance.
		for t, ok := range r.declared {
			if ok && r.tracks[t].started {
				if d := ts*callrec.SamplesPerMS - r.tracks[t].firstPos; d > maxDrift || d < -maxDrift {
					r.errorLocked(callrec.ErrKindBadField, "first frame of a track far from the other track's")
					s.pending.push(f.Seq, 0)
					return
				}
			}
		}
	}
	pos, w, p, why := ts32.place(chunk, uint32(ts), len(f.Payload))
	switch p {
	case duplicate: // seen above; cannot happen
		s.pending.push(f.Seq, 0)
		return
	case early:
		cp.before++
		s.pending.push(f.Seq, 0)
		return
	case rejected:
		r.errorLocked(callrec.ErrKindBadField, why)
		s.pending.push(f.Seq, 0)
		return
	}
	cp.seen[f.Track].add(chunk)
	cp.supplied++
	r.pair.supply(f.Track, chunk, s.info.Pair.Copy)
	r.pair.remember(f.Track, chunk, f.Payload)
	data := f.Payload[:w]
	if r.pair.ready && pos < r.fileBase {
		// Straddles the file's first sample (a copy off by part of a
		// frame): what is before it cannot be written.
		k := min(int64(len(data)), r.fileBase-pos)
		data, pos = data[k:], pos+k
	}
	r.writeLocked(s, f.Seq, f.Track, pos, data)
}

// matchLocked looks for the held frames' audio among the recent chunks
// near the clock estimate: an offset is taken when at least alignVotes
// frames match exactly once each at it and it has at least twice the votes
// of any other offset. Frames of constant audio (digital silence) match
// anywhere and do not vote.
func (r *recording) matchLocked(s *source) (int64, bool) {
	est := r.pair.estimate(s)
	votes := map[int64]int{}
	for _, h := range s.cp.held {
		pl := h.frame.Payload
		if h.note != nil || len(pl) == 0 || bytes.Count(pl, pl[:1]) == len(pl) || !r.declared[h.frame.Track] {
			continue
		}
		hash := maphash.Bytes(r.pair.seed, pl)
		ring := r.pair.ring[h.frame.Track]
		var off int64
		n := 0
		for k := int64(h.frame.Chunk) + est - alignSearch; k <= int64(h.frame.Chunk)+est+alignSearch; k++ {
			if k < 1 {
				continue
			}
			e := ring[k%ringSize]
			if int64(e.chunk) == k && e.hash == hash {
				n, off = n+1, k-int64(h.frame.Chunk)
			}
		}
		if n == 1 {
			votes[off]++
		}
	}
	best, second, bestOff := 0, 0, int64(0)
	for off, v := range votes {
		switch {
		case v > best:
			second, best, bestOff = best, v, off
		case v > second:
			second = v
		}
	}
	return bestOff, best >= alignVotes && best >= 2*second
}

// alignLocked fixes a copy's offset and places what it held.
func (r *recording) alignLocked(s *source, how string, off int64) {
	cp := s.cp
	cp.align, cp.off, cp.offMS = how, off, (off-r.pair.originOff)*20
	if how != callrec.AlignOrigin {
		r.log.Info("copy aligned", callrec.LogKeyStreamSID, s.info.StreamSID, "copy", s.info.Pair.Copy,
			"alignment", how, "offset_ms", cp.offMS, "clock_estimate_ms", (r.pair.estimate(s)-r.pair.originOff)*20)
	}
	r.n.m.copiesAligned.WithLabelValues(how).Inc()
	held := cp.held
	cp.held = nil
	for i := range held {
		h := &held[i]
		if h.note != nil {
			r.noteLocked(s, h.seq, *h.note)
		} else {
			r.placeCopyLocked(s, &h.frame)
		}
	}
}

// pairReadyLocked reports whether the file's start can be chosen: every
// copy has joined and been aligned, or pairWait has passed.
func (r *recording) pairReadyLocked(now time.Time) bool {
	aligned := 0
	for _, s := range r.srcs {
		if s.cp.align != "" {
			aligned++
		}
	}
	return (aligned == len(r.srcs) && len(r.srcs) >= r.pair.copies) || now.Sub(r.pair.created) >= pairWait
}

// startFileLocked chooses the file's first sample: the earliest audio of
// any track, so nothing before it was placed.
func (r *recording) startFileLocked() {
	r.pair.ready = true
	first, any := int64(0), false
	for t, ok := range r.declared {
		if ok && r.tracks[t].started && (!any || r.tracks[t].firstPos < first) {
			first, any = r.tracks[t].firstPos, true
		}
	}
	if !any {
		first = r.win.base
	}
	r.win.skipTo(first)
	r.fileBase = first
	r.meta.Audio.OffsetMS = first/callrec.SamplesPerMS - r.pair.shiftMS()
}

// shiftMS is where the origin's stream time 0 is on the recording's
// timeline (ms): gap times are reported in the origin's stream time.
func (p *pairState) shiftMS() int64 { return p.originOff*20 + p.tsSkew }

// pairTrackAccounting puts a merged recording's track accounting in the
// origin stream's time, and counts the chunks a fresh pair lost before its
// first (no copy brought them) as a missing gap, as a stream's would be.
func (r *recording) pairTrackAccounting(ta *callrec.TrackAccounting, t callrec.Track) {
	if !r.pair.hasOrigin {
		return
	}
	shift := r.pair.shiftMS()
	for i := range ta.Gaps {
		ta.Gaps[i].StartMS -= shift
		ta.Gaps[i].EndMS -= shift
	}
	first := uint32(r.pair.originOff + 1) // the origin's chunk 1
	if e := r.pair.early[t]; e > 0 && e < first {
		first = e // a copy brought audio from before: missing from there
	}
	if r.meta.PreviousINUM == "" && ta.LastChunk > 0 && ta.FirstChunk > first && len(ta.Gaps) < maxListedGaps {
		n := int64(ta.FirstChunk - first)
		ta.Expected += n
		ta.Missing += n
		lead := callrec.Gap{Cause: callrec.GapMissing, FromChunk: first, ToChunk: ta.FirstChunk - 1, Frames: n,
			StartMS: (int64(first)-1)*20 - shift, EndMS: r.tracks[t].firstPos/callrec.SamplesPerMS - shift}
		ta.Gaps = append([]callrec.Gap{lead}, ta.Gaps...)
	}
}

// pairDoneLocked decides whether a merged recording is finished, and how:
// when every copy ended, or one ended with stop and the others' adapters
// are gone or they had pairStopGrace to follow. Copies detached for ResumeGrace end as lost.
func (r *recording) pairDoneLocked(now time.Time) (reason, detail string, done bool) {
	stopped, live, detached := false, 0, 0
	last := ""
	for _, s := range r.srcs {
		if !s.ended() && s.replier == nil && !s.detachedAt.IsZero() && now.Sub(s.detachedAt) > r.n.cfg.ResumeGrace {
			s.endLocked(callrec.EndLinkLost)
			r.log.Warn("copy lost: its adapter did not come back", callrec.LogKeyStreamSID, s.info.StreamSID, "copy", s.info.Pair.Copy)
		}
		switch {
		case s.ended():
			if s.endReason == callrec.EndStop {
				stopped = true
			}
			last = s.endReason
		default:
			live++
			if s.replier == nil && !s.detachedAt.IsZero() {
				detached++
			}
		}
	}
	if stopped && r.pair.stopAt.IsZero() {
		r.pair.stopAt = now
	}
	switch {
	case live == 0 && stopped:
		return callrec.EndStop, "", true
	case live == 0:
		return last, "every copy of the pair ended without stop", true
	case stopped && (detached == live || now.Sub(r.pair.stopAt) >= pairStopGrace):
		return callrec.EndStop, "", true
	}
	return "", "", false
}

// copiesLocked is the per-copy accounting of a merged recording.
func (r *recording) copiesLocked() []callrec.CopyAccounting {
	out := make([]callrec.CopyAccounting, 0, len(r.srcs))
	for _, s := range r.srcs {
		cp := s.cp
		out = append(out, callrec.CopyAccounting{
			Copy: s.info.Pair.Copy, StreamSID: s.info.StreamSID, Adapter: s.info.Adapter,
			Alignment: cp.align, OffsetMS: cp.offMS,
			Received: cp.received + int64(len(cp.held)), Supplied: cp.supplied, Redundant: cp.redundant,
			BeforeStart: cp.before, JoinedAt: cp.joinedAt, EndedAt: s.endedAt, EndReason: s.endReason,
			RestartOf: s.info.CustomParameters["restart_of"],
		})
	}
	return out
}

// supplyRuns lists which copy supplied which chunks of a track.
func (p *pairState) supplyRuns(t callrec.Track, from, to uint32) (runs []callrec.SupplyRun, omitted int64) {
	s := p.supplier[t]
	var cur callrec.SupplyRun // the run being built
	emit := func() {
		if cur.Copy == 0 {
			return
		}
		if len(runs) < maxListedGaps {
			runs = append(runs, cur)
		} else {
			omitted++
		}
	}
	for c := from; c <= to && int(c) < len(s); c++ {
		cp := int(s[c])
		if cp == cur.Copy && cp != 0 && cur.ToChunk+1 == c {
			cur.ToChunk = c
			continue
		}
		emit()
		cur = callrec.SupplyRun{Copy: cp, FromChunk: c, ToChunk: c}
	}
	emit()
	return runs, omitted
}
