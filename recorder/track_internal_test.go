package recorder

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
)

// frameSamples is Twilio's frame: 160 μ-law bytes = 20 ms at 8 kHz.
const frameSamples = 160

// delivery is one frame handed to trackState.place; n 0 means 160 samples.
type delivery struct {
	chunk, ts uint32
	n         int
}

// result is what place returned for one delivery.
type result struct {
	Pos int64
	W   int
	P   placement
	Why string
}

// at is the expected result of a frame placed at pos with w samples.
func at(pos int64, w int) result { return result{Pos: pos, W: w, P: placed} }

var dup = result{P: duplicate}

func rej(why string) result { return result{P: rejected, Why: why} }

// frameAt returns a 160-sample frame of chunk at its nominal Twilio
// timestamp (chunk-1)*20 ms, shifted by jitter ms.
func frameAt(chunk uint32, jitter int) delivery {
	return delivery{chunk: chunk, ts: uint32(int(chunk-1)*20 + jitter)}
}

// placeAll feeds ds to t and returns what place decided for each.
func placeAll(t *trackState, ds []delivery) []result {
	out := make([]result, 0, len(ds))
	for _, d := range ds {
		n := d.n
		if n == 0 {
			n = frameSamples
		}
		pos, w, p, why := t.place(d.chunk, d.ts, n)
		out = append(out, result{Pos: pos, W: w, P: p, Why: why})
	}
	return out
}

func missingGap(from, to uint32, startMS, endMS int64) callrec.Gap {
	return callrec.Gap{Cause: callrec.GapMissing, FromChunk: from, ToChunk: to, Frames: int64(to-from) + 1, StartMS: startMS, EndMS: endMS}
}

func timingGap(startMS, endMS int64) callrec.Gap {
	return callrec.Gap{Cause: callrec.GapTiming, StartMS: startMS, EndMS: endMS}
}

func TestTrackPlace(t *testing.T) {
	type overflowNote struct {
		from, to uint32
		frames   int64
	}
	tests := []struct {
		name     string
		frames   []delivery
		overflow []overflowNote // reported after all frames are placed
		want     []result
		acct     callrec.TrackAccounting // Track is set by the test
	}{
		{
			name:   "in order frames are contiguous",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), frameAt(3, 0), frameAt(4, 0)},
			want:   []result{at(0, 160), at(160, 160), at(320, 160), at(480, 160)},
			acct:   callrec.TrackAccounting{Expected: 4, Received: 4, FirstChunk: 1, LastChunk: 4, Samples: 640, Gaps: []callrec.Gap{}},
		},
		{
			name:   "first frame at a non-zero timestamp is placed there",
			frames: []delivery{{chunk: 1, ts: 100}, {chunk: 2, ts: 120}},
			want:   []result{at(800, 160), at(960, 160)},
			acct:   callrec.TrackAccounting{Expected: 2, Received: 2, FirstChunk: 1, LastChunk: 2, Samples: 320, Gaps: []callrec.Gap{}},
		},
		{
			name: "timestamp jitter of a few ms is absorbed",
			frames: []delivery{
				frameAt(1, 0), frameAt(2, +3), frameAt(3, -4), frameAt(4, +1), frameAt(5, -2),
				frameAt(6, +19), // 19 ms late: still less than one frame
			},
			want: []result{at(0, 160), at(160, 160), at(320, 160), at(480, 160), at(640, 160), at(800, 160)},
			acct: callrec.TrackAccounting{Expected: 6, Received: 6, FirstChunk: 1, LastChunk: 6, Samples: 960, Gaps: []callrec.Gap{}},
		},
		{
			name:   "timestamp going backwards is placed after the previous frame",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), {chunk: 3, ts: 0}},
			want:   []result{at(0, 160), at(160, 160), at(320, 160)},
			acct:   callrec.TrackAccounting{Expected: 3, Received: 3, FirstChunk: 1, LastChunk: 3, Samples: 480, Gaps: []callrec.Gap{}},
		},
		{
			name:   "timestamp jump of exactly one frame is a timing gap",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), {chunk: 3, ts: 60}, {chunk: 4, ts: 80}},
			want:   []result{at(0, 160), at(160, 160), at(480, 160), at(640, 160)},
			acct: callrec.TrackAccounting{Expected: 4, Received: 4, FirstChunk: 1, LastChunk: 4, Samples: 640,
				Gaps: []callrec.Gap{timingGap(40, 60)}},
		},
		{
			name:   "long timestamp jump with consecutive chunks",
			frames: []delivery{frameAt(1, 0), {chunk: 2, ts: 1000}, {chunk: 3, ts: 1020}},
			want:   []result{at(0, 160), at(8000, 160), at(8160, 160)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{timingGap(20, 1000)}},
		},
		{
			name:   "missing chunks make a missing gap",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), frameAt(6, 0), frameAt(7, 0)},
			want:   []result{at(0, 160), at(160, 160), at(800, 160), at(960, 160)},
			acct: callrec.TrackAccounting{Expected: 7, Received: 4, Missing: 3, FirstChunk: 1, LastChunk: 7, Samples: 640,
				Gaps: []callrec.Gap{missingGap(3, 5, 40, 100)}},
		},
		{
			name:   "missing chunks with a timestamp too early start right after the last frame",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), {chunk: 4, ts: 30}},
			want:   []result{at(0, 160), at(160, 160), at(320, 160)},
			acct: callrec.TrackAccounting{Expected: 4, Received: 3, Missing: 1, FirstChunk: 1, LastChunk: 4, Samples: 480,
				Gaps: []callrec.Gap{missingGap(3, 3, 40, 40)}},
		},
		{
			name:   "late chunk in the middle of a 3-chunk gap splits it",
			frames: []delivery{frameAt(1, 0), frameAt(5, 0), frameAt(3, 0)},
			want:   []result{at(0, 160), at(640, 160), at(320, 160)},
			acct: callrec.TrackAccounting{Expected: 5, Received: 3, Missing: 2, OutOfOrder: 1, FirstChunk: 1, LastChunk: 5, Samples: 480,
				Gaps: []callrec.Gap{missingGap(2, 2, 20, 40), missingGap(4, 4, 60, 80)}},
		},
		{
			name:   "late chunks at both ends of a gap shrink it",
			frames: []delivery{frameAt(1, 0), frameAt(6, 0), frameAt(2, 0), frameAt(5, 0)},
			want:   []result{at(0, 160), at(800, 160), at(160, 160), at(640, 160)},
			acct: callrec.TrackAccounting{Expected: 6, Received: 4, Missing: 2, OutOfOrder: 2, FirstChunk: 1, LastChunk: 6, Samples: 640,
				Gaps: []callrec.Gap{missingGap(3, 4, 40, 80)}},
		},
		{
			name:   "late chunks fill a gap completely",
			frames: []delivery{frameAt(1, 0), frameAt(4, 0), frameAt(3, 0), frameAt(2, 0), frameAt(5, 0)},
			want:   []result{at(0, 160), at(480, 160), at(320, 160), at(160, 160), at(640, 160)},
			acct: callrec.TrackAccounting{Expected: 5, Received: 5, OutOfOrder: 2, FirstChunk: 1, LastChunk: 5, Samples: 800,
				Gaps: []callrec.Gap{}},
		},
		{
			name: "late chunk timestamp is clamped into its gap",
			frames: []delivery{
				frameAt(1, 0), frameAt(4, 0),
				{chunk: 2, ts: 0},   // before the gap: at its start
				{chunk: 3, ts: 500}, // after the gap: at its end
			},
			want: []result{at(0, 160), at(480, 160), at(160, 160), at(320, 160)},
			acct: callrec.TrackAccounting{Expected: 4, Received: 4, OutOfOrder: 2, FirstChunk: 1, LastChunk: 4, Samples: 640,
				Gaps: []callrec.Gap{}},
		},
		{
			name: "late chunk is cut to a gap narrower than a frame",
			frames: []delivery{
				frameAt(1, 0),
				{chunk: 3, ts: 30}, // gap for chunk 2 is [160, 240): 80 samples
				frameAt(2, 0),
			},
			want: []result{at(0, 160), at(240, 160), at(160, 80)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 400,
				Gaps: []callrec.Gap{}},
		},
		{
			// In order, 1 2 3 would list the timing gap [40, 1000) ms; the
			// late chunk 2 must leave the same gap, not unexplained silence.
			name:   "late chunk before a timestamp jump leaves a timing gap",
			frames: []delivery{frameAt(1, 0), {chunk: 3, ts: 1000}, frameAt(2, 0)},
			want:   []result{at(0, 160), at(8000, 160), at(160, 160)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{timingGap(40, 1000)}},
		},
		{
			name:   "late chunk after a timestamp jump leaves a timing gap",
			frames: []delivery{frameAt(1, 0), {chunk: 3, ts: 1020}, {chunk: 2, ts: 1000}},
			want:   []result{at(0, 160), at(8160, 160), at(8000, 160)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{timingGap(20, 1000)}},
		},
		{
			name:   "late chunk 1 before a timestamp jump leaves a timing gap",
			frames: []delivery{{chunk: 2, ts: 1000}, frameAt(1, 0)},
			want:   []result{at(8000, 160), at(0, 160)},
			acct: callrec.TrackAccounting{Expected: 2, Received: 2, OutOfOrder: 1, FirstChunk: 1, LastChunk: 2, Samples: 320,
				Gaps: []callrec.Gap{timingGap(20, 1000)}},
		},
		{
			// As in order: silence before chunk 1 is not a gap.
			name:   "late chunk 1 at a non-zero timestamp leaves no gap before it",
			frames: []delivery{{chunk: 2, ts: 120}, {chunk: 1, ts: 100}},
			want:   []result{at(960, 160), at(800, 160)},
			acct: callrec.TrackAccounting{Expected: 2, Received: 2, OutOfOrder: 1, FirstChunk: 1, LastChunk: 2, Samples: 320,
				Gaps: []callrec.Gap{}},
		},
		{
			name:   "late chunk with a few ms of jitter leaves no timing gap",
			frames: []delivery{frameAt(1, 0), frameAt(3, +5), frameAt(2, -3)},
			want:   []result{at(0, 160), at(360, 160), at(160, 160)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{}},
		},
		{
			name:   "duplicates are counted and not placed again",
			frames: []delivery{frameAt(1, 0), frameAt(2, 0), frameAt(2, 0), frameAt(1, 0), frameAt(3, 0), frameAt(3, 0)},
			want:   []result{at(0, 160), at(160, 160), dup, dup, at(320, 160), dup},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, Duplicates: 3, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{}},
		},
		{
			name:   "duplicate of a late chunk is a duplicate",
			frames: []delivery{frameAt(1, 0), frameAt(3, 0), frameAt(2, 0), frameAt(2, 0)},
			want:   []result{at(0, 160), at(320, 160), at(160, 160), dup},
			acct: callrec.TrackAccounting{Expected: 3, Received: 3, Duplicates: 1, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 480,
				Gaps: []callrec.Gap{}},
		},
		{
			name:   "first chunk above 1 leaves a leading gap from 0",
			frames: []delivery{frameAt(3, 0), frameAt(4, 0)},
			want:   []result{at(320, 160), at(480, 160)},
			acct: callrec.TrackAccounting{Expected: 4, Received: 2, Missing: 2, FirstChunk: 3, LastChunk: 4, Samples: 320,
				Gaps: []callrec.Gap{missingGap(1, 2, 0, 40)}},
		},
		{
			name:   "chunk 1 arriving after chunk 3 fills the leading gap",
			frames: []delivery{frameAt(3, 0), frameAt(1, 0)},
			want:   []result{at(320, 160), at(0, 160)},
			acct: callrec.TrackAccounting{Expected: 3, Received: 2, Missing: 1, OutOfOrder: 1, FirstChunk: 1, LastChunk: 3, Samples: 320,
				Gaps: []callrec.Gap{missingGap(2, 2, 20, 40)}},
		},
		{
			name: "bad chunks and timestamps are rejected and change nothing",
			frames: []delivery{
				{chunk: 0, ts: 0},
				{chunk: maxChunkJump + 1, ts: 0},
				{chunk: 1, ts: maxSampleJump/callrec.SamplesPerMS + 1},
				frameAt(1, 0),
				{chunk: 0, ts: 20},
				{chunk: 1 + maxChunkJump + 1, ts: 20},
				{chunk: 2, ts: uint32(160+maxSampleJump)/callrec.SamplesPerMS + 1},
				frameAt(2, 0),
			},
			want: []result{
				rej("chunk 0"), rej("first chunk too high"), rej("first timestamp too far from stream start"),
				at(0, 160),
				rej("chunk 0"), rej("chunk jumps too far ahead"), rej("timestamp jumps too far ahead"),
				at(160, 160),
			},
			acct: callrec.TrackAccounting{Expected: 2, Received: 2, FirstChunk: 1, LastChunk: 2, Samples: 320, Gaps: []callrec.Gap{}},
		},
		{
			name: "jumps at the limits are accepted",
			frames: []delivery{
				{chunk: 1, ts: maxSampleJump / callrec.SamplesPerMS},
				{chunk: 1 + maxChunkJump, ts: maxSampleJump/callrec.SamplesPerMS + 20 + maxSampleJump/callrec.SamplesPerMS},
			},
			want: []result{at(maxSampleJump, 160), at(2*maxSampleJump+160, 160)},
			acct: callrec.TrackAccounting{Expected: 1 + maxChunkJump, Received: 2, Missing: maxChunkJump - 1,
				FirstChunk: 1, LastChunk: 1 + maxChunkJump, Samples: 320,
				Gaps: []callrec.Gap{missingGap(2, maxChunkJump, 60020, 120020)}},
		},
		{
			name:     "overflow notes turn matching missing gaps into overflow gaps",
			frames:   []delivery{frameAt(1, 0), frameAt(4, 0), frameAt(6, 0), frameAt(10, 0), frameAt(8, 0)},
			overflow: []overflowNote{{from: 2, to: 3, frames: 2}, {from: 7, to: 9, frames: 3}},
			want:     []result{at(0, 160), at(480, 160), at(800, 160), at(1440, 160), at(1120, 160)},
			acct: callrec.TrackAccounting{Expected: 10, Received: 5, Missing: 5, OutOfOrder: 1, FirstChunk: 1, LastChunk: 10, Samples: 800,
				Overflow: 5,
				Gaps: []callrec.Gap{
					{Cause: callrec.GapOverflow, FromChunk: 2, ToChunk: 3, Frames: 2, StartMS: 20, EndMS: 60},
					missingGap(5, 5, 80, 100), // not reported dropped
					{Cause: callrec.GapOverflow, FromChunk: 7, ToChunk: 7, Frames: 1, StartMS: 120, EndMS: 140},
					{Cause: callrec.GapOverflow, FromChunk: 9, ToChunk: 9, Frames: 1, StartMS: 160, EndMS: 180},
				}},
		},
		{
			name:     "overflow note covering part of a gap leaves it missing",
			frames:   []delivery{frameAt(1, 0), frameAt(5, 0)},
			overflow: []overflowNote{{from: 3, to: 4, frames: 2}},
			want:     []result{at(0, 160), at(640, 160)},
			acct: callrec.TrackAccounting{Expected: 5, Received: 2, Missing: 3, FirstChunk: 1, LastChunk: 5, Samples: 320,
				Overflow: 2, Gaps: []callrec.Gap{missingGap(2, 4, 20, 80)}},
		},
		{
			name:   "no frames",
			frames: nil,
			want:   []result{},
			acct:   callrec.TrackAccounting{Gaps: []callrec.Gap{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ts trackState
			got := placeAll(&ts, tc.frames)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("placements (-want +got):\n%s", diff)
			}
			for _, o := range tc.overflow {
				ts.addOverflow(o.from, o.to, o.frames)
			}
			want := tc.acct
			want.Track = callrec.TrackOutbound.String()
			acct := ts.accounting(callrec.TrackOutbound)
			if diff := cmp.Diff(want, acct); diff != "" {
				t.Errorf("accounting (-want +got):\n%s", diff)
			}
			checkAccountingConsistent(t, acct)
		})
	}
}

// checkAccountingConsistent checks the invariants every accounting keeps.
func checkAccountingConsistent(t *testing.T, a callrec.TrackAccounting) {
	t.Helper()
	if a.Missing != a.Expected-a.Received {
		t.Errorf("missing %d != expected %d - received %d", a.Missing, a.Expected, a.Received)
	}
	if a.Received > a.Expected {
		t.Errorf("received %d > expected %d", a.Received, a.Expected)
	}
	if a.Expected != int64(a.LastChunk) {
		t.Errorf("expected %d != last chunk %d", a.Expected, a.LastChunk)
	}
	var gapFrames int64
	for i, g := range a.Gaps {
		if g.EndMS < g.StartMS {
			t.Errorf("gap %d ends before it starts: %+v", i, g)
		}
		if i > 0 && g.StartMS < a.Gaps[i-1].EndMS {
			t.Errorf("gap %d overlaps the previous one: %+v after %+v", i, g, a.Gaps[i-1])
		}
		gapFrames += g.Frames
	}
	if a.GapsOmit == 0 && gapFrames != a.Missing {
		t.Errorf("gaps list %d missing frames, accounting says %d", gapFrames, a.Missing)
	}
}

func TestTrackGapListIsCapped(t *testing.T) {
	var ts trackState
	// Every even chunk missing: one gap per odd chunk after the first.
	const gaps = maxListedGaps + 5
	for c := uint32(1); c <= 2*gaps+1; c += 2 {
		if _, _, p, why := ts.place(c, (c-1)*20, frameSamples); p != placed {
			t.Fatalf("chunk %d: %v %s", c, p, why)
		}
	}
	a := ts.accounting(callrec.TrackInbound)
	if len(a.Gaps) != maxListedGaps || a.GapsOmit != 5 {
		t.Errorf("listed %d gaps, omitted %d; want %d and 5", len(a.Gaps), a.GapsOmit, maxListedGaps)
	}
	if a.Missing != gaps {
		t.Errorf("missing = %d, want %d", a.Missing, gaps)
	}
	if got, want := a.Gaps[maxListedGaps-1], missingGap(2*maxListedGaps, 2*maxListedGaps, 20*(2*maxListedGaps-1), 20*2*maxListedGaps); got != want {
		t.Errorf("last listed gap = %+v, want %+v", got, want)
	}
}

func TestTrackHoldback(t *testing.T) {
	var ts trackState
	if hb := ts.holdback(0); hb != -1 {
		t.Errorf("holdback of an empty track = %d, want -1", hb)
	}
	placeAll(&ts, []delivery{frameAt(1, 0), frameAt(2, 0), {chunk: 3, ts: 100}, {chunk: 6, ts: 160}, {chunk: 9, ts: 220}})
	// Gaps: timing [320, 800), missing 4..5 [960, 1280), missing 7..8 [1440, 1760).
	for _, c := range []struct{ from, want int64 }{
		{0, 960}, {959, 960}, {1000, 960}, {1279, 960}, {1280, 1440}, {1700, 1440}, {1760, -1}, {5000, -1},
	} {
		if got := ts.holdback(c.from); got != c.want {
			t.Errorf("holdback(%d) = %d, want %d", c.from, got, c.want)
		}
	}
	// Filling the first gap releases it.
	placeAll(&ts, []delivery{{chunk: 4, ts: 120}, {chunk: 5, ts: 140}})
	if got := ts.holdback(0); got != 1440 {
		t.Errorf("after filling 4..5, holdback(0) = %d, want 1440", got)
	}
}

// TestTrackPlaceProperty places a track's frames after random loss,
// duplication and reordering and checks that every frame lands exactly at
// its chunk's place and the accounting matches what was delivered.
func TestTrackPlaceProperty(t *testing.T) {
	const iterations = 3000
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for it := range iterations {
		n := 1 + rng.IntN(80)
		order := scramble(rng, n)
		if !checkPlacement(t, order) {
			t.Fatalf("iteration %d (seed %d, %d chunks): delivery order %v", it, seed, n, order)
		}
	}
}

// scramble returns a delivery order of chunks 1..n with random drops,
// duplicates, adjacent swaps and shuffles within windows of 5.
func scramble(rng *rand.Rand, n int) []uint32 {
	pDrop, pDup, pSwap, pShuffle := rng.Float64()*0.3, rng.Float64()*0.2, rng.Float64()*0.3, rng.Float64()*0.3
	var order []uint32
	for c := 1; c <= n; c++ {
		if rng.Float64() < pDrop {
			continue
		}
		order = append(order, uint32(c))
		if rng.Float64() < pDup {
			order = append(order, uint32(c))
		}
	}
	// Late duplicates of anything delivered so far.
	for i := range order {
		if rng.Float64() < pDup/2 {
			j := i + rng.IntN(len(order)-i+1)
			order = slices.Insert(order, j, order[i])
		}
	}
	for i := 0; i+1 < len(order); i++ {
		if rng.Float64() < pSwap {
			order[i], order[i+1] = order[i+1], order[i]
			i++
		}
	}
	for i := 0; i < len(order); i += 5 {
		if rng.Float64() < pShuffle {
			w := order[i:min(i+5, len(order))]
			rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
	}
	return order
}

// checkPlacement places order and checks the result; it reports failures
// and returns false if any.
func checkPlacement(t *testing.T, order []uint32) bool {
	t.Helper()
	ok := true
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	var ts trackState
	delivered := map[uint32]bool{}
	var highest uint32
	var dups, ooo int64
	for _, c := range order {
		pos, w, p, why := ts.place(c, (c-1)*20, frameSamples)
		switch {
		case delivered[c]:
			dups++
			if p != duplicate {
				errorf("repeat of chunk %d: placement %v (%s), want duplicate", c, p, why)
			}
		case p != placed:
			errorf("chunk %d: placement %v (%s), want placed", c, p, why)
		case pos != int64(c-1)*frameSamples || w != frameSamples:
			errorf("chunk %d placed at %d (%d samples), want %d (160)", c, pos, w, int64(c-1)*frameSamples)
		}
		if !delivered[c] && c < highest {
			ooo++
		}
		delivered[c] = true
		highest = max(highest, c)
	}
	a := ts.accounting(callrec.TrackInbound)
	want := callrec.TrackAccounting{
		Track:      "inbound",
		Expected:   int64(highest),
		Received:   int64(len(delivered)),
		Duplicates: dups,
		OutOfOrder: ooo,
		Missing:    int64(highest) - int64(len(delivered)),
		Samples:    int64(len(delivered)) * frameSamples,
		Gaps:       []callrec.Gap{},
	}
	if len(delivered) > 0 {
		want.FirstChunk, want.LastChunk = slices.Min(slices.Collect(maps.Keys(delivered))), highest
	}
	// The gaps are the runs of undelivered chunks below the highest.
	for c := uint32(1); c < highest; c++ {
		if delivered[c] {
			continue
		}
		from := c
		for c+1 < highest && !delivered[c+1] {
			c++
		}
		want.Gaps = append(want.Gaps, missingGap(from, c, int64(from-1)*20, int64(c)*20))
	}
	if diff := cmp.Diff(want, a); diff != "" {
		errorf("accounting (-want +got):\n%s", diff)
	}
	return ok
}

func TestBitset(t *testing.T) {
	var b bitset
	in := []uint32{1, 63, 64, 65, 127, 128, 4095, 4096, 100000}
	for _, i := range in {
		if b.has(i) {
			t.Errorf("empty set has %d", i)
		}
		b.add(i)
	}
	for i := uint32(0); i <= 100001; i++ {
		if got, want := b.has(i), slices.Contains(in, i); got != want {
			t.Fatalf("has(%d) = %v, want %v", i, got, want)
		}
	}
}

// TestTrackSilenceIsExplained places frames with jittered timestamps and
// occasional timestamp jumps, delivered with loss, duplicates and
// reordering, and checks the timeline: placed frames never overlap, gaps
// never cover audio, and every stretch of silence of a frame or more between
// chunk 1 (or stream start when chunk 1 is missing) and the end of the track
// is listed as a gap, whatever the arrival order.
func TestTrackSilenceIsExplained(t *testing.T) {
	const iterations = 3000
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x511e))
	for it := range iterations {
		n := 1 + rng.IntN(60)
		ts := make([]uint32, n+1) // ts[c] of chunk c
		var shift int
		for c := 1; c <= n; c++ {
			if rng.IntN(10) == 0 {
				shift += 20 * (1 + rng.IntN(10)) // Twilio's clock jumps ahead
			}
			ts[c] = uint32(max(0, (c-1)*20+shift+rng.IntN(11)-5))
		}
		order := scramble(rng, n)
		if !checkTimeline(t, order, ts) {
			t.Fatalf("iteration %d (seed %d): order %v, timestamps %v", it, seed, order, ts[1:])
		}
	}
}

func checkTimeline(t *testing.T, order []uint32, ts []uint32) bool {
	t.Helper()
	var tr trackState
	type span struct{ start, end int64 }
	var audio []span
	var end int64
	var from int64 // silence before chunk 1 is not a gap: stream time started earlier
	for _, c := range order {
		pos, w, p, why := tr.place(c, ts[c], frameSamples)
		if c == 1 && p == placed {
			from = pos
		}
		if p == rejected {
			t.Errorf("chunk %d at %d ms rejected: %s", c, ts[c], why)
			return false
		}
		if p == placed && w > 0 {
			audio = append(audio, span{pos, pos + int64(w)})
			end = max(end, pos+int64(w))
		}
	}
	// Mark every sample: 1 audio, 2 gap.
	line := make([]byte, end)
	for _, a := range audio {
		for i := a.start; i < a.end; i++ {
			if line[i] != 0 {
				t.Errorf("frame [%d, %d) overlaps other audio at %d", a.start, a.end, i)
				return false
			}
			line[i] = 1
		}
	}
	for _, g := range tr.gaps {
		for i := g.start; i < g.end && i < end; i++ {
			if line[i] == 1 {
				t.Errorf("gap %+v covers audio at %d", g, i)
				return false
			}
			line[i] = 2
		}
	}
	for i := from; i < end; {
		if line[i] != 0 {
			i++
			continue
		}
		j := i
		for j < end && line[j] == 0 {
			j++
		}
		if j-i >= frameSamples {
			t.Errorf("silence [%d, %d) (%d samples) is in no gap; gaps %+v", i, j, j-i, tr.gaps)
			return false
		}
		i = j
	}
	return true
}
