package recorder

import (
	"slices"

	"callrec"
)

// Guards against frames that would make us allocate absurd amounts: a chunk
// or timestamp that jumps further ahead than this is rejected as bad input.
const (
	maxChunkJump  = 50 * 60 * 10            // 10 minutes of 20 ms frames
	maxSampleJump = 60 * callrec.SampleRate // 60 s of audio
	// A segment continuing a stream may start anywhere in a call, but no
	// further than a day in, and with its timestamp within maxDrift of
	// where its chunk number puts it: one frame cannot make us allocate
	// more than a day's chunk bitmap.
	maxFirstChunk = 50 * 60 * 60 * 24                   // a day of 20 ms frames
	maxDrift      = 10 * 60 * int64(callrec.SampleRate) // 10 minutes
	frameLen      = 20 * callrec.SamplesPerMS           // samples in a 20 ms frame
	maxListedGaps = 1000                                // per track in the API; the rest are counted
	jitterSamples = 160                                 // a timestamp within one frame of the expected place is jitter
)

// placement is what trackState.place decided for a frame.
type placement uint8

const (
	placed    placement = iota // at pos, at or after the window's start
	duplicate                  // chunk already written: dropped
	rejected                   // bad chunk or timestamp: dropped, reported
	early                      // before the start of the recording's timeline: dropped, counted
)

// gapSpan is a stretch of a track with no audio, in samples since stream
// start. Missing gaps cover chunks from..to; a late frame splits them.
type gapSpan struct {
	cause      callrec.GapCause
	from, to   uint32
	start, end int64
}

// trackState places one track's frames on the stream's timeline and keeps
// its frame accounting.
//
// Placement: a frame belongs at timestamp × 8 samples. A frame whose chunk
// follows the previous one directly is laid right after it when its
// timestamp is within one frame of that place (timestamp jitter must not
// insert clicks of silence or overlap audio); a bigger jump is a timing gap.
// After missing chunks the next frame goes at its timestamp, and the missing
// chunks become a gap. A late frame (chunk below the highest seen) goes into
// the gap that waits for it, at its timestamp clamped into the gap.
type trackState struct {
	// continues is set for a segment that continues another INUM's stream:
	// its first frame starts the count, the chunks before are in the other
	// segment, not missing.
	continues bool
	// leading is set for a merged recording of several copies: a copy that
	// started earlier brings chunks before the first one placed, which go
	// in front of it.
	leading    bool
	started    bool
	firstChunk uint32
	firstPos   int64  // where the lowest chunk placed starts
	lastChunk  uint32 // highest chunk placed
	lastEnd    int64  // end of the frame with the highest chunk
	seen       bitset

	received, dups, ooo, samples int64
	gaps                         []gapSpan // sorted by start
	overflow                     []gapSpan // chunk ranges the adapter reported dropped
	overflowFrames               int64
}

// place decides where a frame of n samples goes. It returns the sample
// position and the placement, and the number of samples to write (a late
// frame is cut to the gap it fills, never overwriting neighbours).
func (t *trackState) place(chunk, ts uint32, n int) (pos int64, w int, p placement, why string) {
	if chunk == 0 {
		return 0, 0, rejected, "chunk 0"
	}
	if !t.started && (chunk > maxFirstChunk || chunk > maxChunkJump && !t.continues) {
		return 0, 0, rejected, "first chunk too high"
	}
	if t.started && chunk > t.lastChunk && chunk-t.lastChunk > maxChunkJump {
		return 0, 0, rejected, "chunk jumps too far ahead"
	}
	if t.seen.has(chunk) {
		t.dups++
		return 0, 0, duplicate, ""
	}
	tpos := int64(ts) * callrec.SamplesPerMS
	if t.started && chunk > t.lastChunk && tpos > t.lastEnd+maxSampleJump {
		return 0, 0, rejected, "timestamp jumps too far ahead"
	}
	if !t.started && tpos > maxSampleJump && !t.continues {
		return 0, 0, rejected, "first timestamp too far from stream start"
	}
	if !t.started && t.continues {
		// A segment continuing another INUM starts wherever the stream
		// was, with its timestamp near where its chunk puts it.
		if d := tpos - int64(chunk-1)*frameLen; d > maxDrift || d < -maxDrift {
			return 0, 0, rejected, "first timestamp far from where its chunk puts it"
		}
	}
	switch {
	case !t.started:
		t.started, t.firstChunk, t.lastChunk = true, chunk, chunk
		if chunk > 1 && !t.continues {
			t.addGap(gapSpan{cause: callrec.GapMissing, from: 1, to: chunk - 1, start: 0, end: tpos})
		}
		pos = tpos
		t.firstPos = pos
		t.lastEnd = pos + int64(n)
	case t.leading && chunk < t.firstChunk:
		if t.firstChunk-chunk > maxChunkJump {
			return 0, 0, rejected, "chunk too far before the recording's first"
		}
		pos = min(tpos, t.firstPos-int64(n))
		if pos < 0 {
			return 0, 0, early, ""
		}
		if chunk+1 < t.firstChunk {
			t.gaps = slices.Insert(t.gaps, 0, gapSpan{cause: callrec.GapMissing, from: chunk + 1, to: t.firstChunk - 1, start: pos + int64(n), end: t.firstPos})
		} else if t.firstPos-(pos+int64(n)) >= jitterSamples {
			t.gaps = slices.Insert(t.gaps, 0, gapSpan{cause: callrec.GapTiming, start: pos + int64(n), end: t.firstPos})
		} else {
			pos = t.firstPos - int64(n)
		}
		t.firstPos = pos
	case chunk > t.lastChunk:
		pos = tpos
		if chunk == t.lastChunk+1 {
			if pos < t.lastEnd || pos-t.lastEnd < jitterSamples {
				pos = t.lastEnd
			} else {
				t.addGap(gapSpan{cause: callrec.GapTiming, start: t.lastEnd, end: pos})
			}
		} else {
			pos = max(pos, t.lastEnd)
			t.addGap(gapSpan{cause: callrec.GapMissing, from: t.lastChunk + 1, to: chunk - 1, start: t.lastEnd, end: pos})
		}
		t.lastChunk = chunk
		t.lastEnd = pos + int64(n)
	default: // late: chunk below the highest seen and not seen before
		t.ooo++
		var ok bool
		pos, n, ok = t.fill(chunk, tpos, n)
		if !ok {
			return 0, 0, rejected, "late chunk has no gap to fill"
		}
	}
	if chunk < t.firstChunk {
		t.firstChunk = chunk
	}
	t.seen.add(chunk)
	t.received++
	t.samples += int64(n)
	return pos, n, placed, ""
}

// fill places a late chunk into the missing gap that holds it and splits the
// gap around it.
func (t *trackState) fill(chunk uint32, tpos int64, n int) (int64, int, bool) {
	for i := range t.gaps {
		g := t.gaps[i]
		if g.cause != callrec.GapMissing || chunk < g.from || chunk > g.to {
			continue
		}
		pos := min(max(tpos, g.start), max(g.start, g.end-int64(n)))
		w := int(min(int64(n), g.end-pos))
		// What stays silent on either side is still a gap: a missing gap
		// while chunks are missing there, else (the gap was wider than its
		// frames: the timestamps jumped) a timing gap, as in-order delivery
		// would have listed it (none before chunk 1).
		var repl []gapSpan
		if chunk > g.from {
			repl = append(repl, gapSpan{cause: g.cause, from: g.from, to: chunk - 1, start: g.start, end: pos})
		} else if chunk > 1 && pos-g.start >= jitterSamples {
			repl = append(repl, gapSpan{cause: callrec.GapTiming, start: g.start, end: pos})
		}
		if chunk < g.to {
			repl = append(repl, gapSpan{cause: g.cause, from: chunk + 1, to: g.to, start: pos + int64(w), end: g.end})
		} else if g.end-(pos+int64(w)) >= jitterSamples {
			repl = append(repl, gapSpan{cause: callrec.GapTiming, start: pos + int64(w), end: g.end})
		}
		t.gaps = append(t.gaps[:i], append(repl, t.gaps[i+1:]...)...)
		return pos, w, true
	}
	return 0, 0, false
}

func (t *trackState) addGap(g gapSpan) { t.gaps = append(t.gaps, g) }

// holdback returns where the earliest missing gap ending after from starts,
// or -1: audio from there on may still be completed by a late frame.
func (t *trackState) holdback(from int64) int64 {
	for _, g := range t.gaps {
		if g.cause == callrec.GapMissing && g.end > from {
			return g.start
		}
	}
	return -1
}

// addOverflow records chunks the adapter dropped (reported in a note).
func (t *trackState) addOverflow(from, to uint32, frames int64) {
	t.overflow = append(t.overflow, gapSpan{cause: callrec.GapOverflow, from: from, to: to})
	t.overflowFrames += frames
}

// accounting returns the track's frame accounting.
func (t *trackState) accounting(tr callrec.Track) callrec.TrackAccounting {
	a := callrec.TrackAccounting{
		Track:      tr.String(),
		Received:   t.received,
		Duplicates: t.dups,
		OutOfOrder: t.ooo,
		Samples:    t.samples,
		Overflow:   t.overflowFrames,
		Gaps:       []callrec.Gap{},
	}
	if t.started {
		a.FirstChunk, a.LastChunk = t.firstChunk, t.lastChunk
		a.Expected = int64(t.lastChunk)
		if t.continues {
			a.Expected = int64(t.lastChunk-t.firstChunk) + 1
		}
	}
	a.Missing = a.Expected - a.Received
	for _, g := range t.gaps {
		if len(a.Gaps) >= maxListedGaps {
			a.GapsOmit++
			continue
		}
		cg := callrec.Gap{Cause: g.cause, StartMS: g.start / callrec.SamplesPerMS, EndMS: g.end / callrec.SamplesPerMS}
		if g.cause == callrec.GapMissing {
			cg.FromChunk, cg.ToChunk, cg.Frames = g.from, g.to, int64(g.to-g.from)+1
			if t.isOverflow(g.from, g.to) {
				cg.Cause = callrec.GapOverflow
			}
		}
		a.Gaps = append(a.Gaps, cg)
	}
	return a
}

func (t *trackState) isOverflow(from, to uint32) bool {
	for _, o := range t.overflow {
		if from >= o.from && to <= o.to {
			return true
		}
	}
	return false
}

// bitset is a growable set of chunk numbers.
type bitset []uint64

func (b bitset) has(i uint32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(i&63)) != 0
}

func (b *bitset) add(i uint32) {
	w := int(i >> 6)
	if w >= len(*b) {
		n := max(w+1, 2*len(*b), 64)
		nb := make(bitset, n)
		copy(nb, *b)
		*b = nb
	}
	(*b)[w] |= 1 << (i & 63)
}
