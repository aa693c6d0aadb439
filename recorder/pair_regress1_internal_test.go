package recorder

import (
	"runtime"
	"testing"

	"callrec"
	"callrec/internal/link"
)

func allocMB(f func()) float64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return float64(b.TotalAlloc-a.TotalAlloc) / (1 << 20)
}

// One frame with a wild chunk number as the first frame of a pair copy
// poisons the track: every later good frame is rejected ("too far before"),
// acknowledged and lost; and the chunk drives big allocations.
func TestPairRegressPairHostileFirstChunk(t *testing.T) {
	const frames = 100
	a := newCallAudio(frames, 1)
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	r := c1.s.r
	mb := allocMB(func() {
		c1.seq++
		c1.s.Frame(&callrec.Frame{Seq: c1.seq, Track: callrec.TrackInbound, Chunk: 100_000_000, TimestampMS: 0, Payload: make([]byte, 160)})
	})
	t.Logf("one frame with chunk 1e8 allocated %.0f MB (chunk 2^31-501 would be ~2.5 GB per track)", mb)
	for k := range frames {
		c1.send(a, k)
	}
	c1.stop()
	r.mu.Lock()
	r.pair.created = r.pair.created.Add(-pairWait)
	r.mu.Unlock()
	// second copy never comes: finish now
	r.mu.Lock()
	r.closing = &link.Close{Reason: callrec.EndStop}
	r.mu.Unlock()
	p.n.finalize(r, callrec.EndStop, "")
	rec, _ := p.finished(r)
	for _, ta := range rec.Accounting.Tracks {
		t.Logf("%s: received %d expected %d missing %d errors %v", ta.Track, ta.Received, ta.Expected, ta.Missing, rec.Accounting.ErrorCounts)
		if ta.Track == "inbound" && ta.Received < frames {
			t.Errorf("inbound: %d of %d good frames recorded after one bad first frame", ta.Received, frames)
		}
	}
}

// A pair copy's first frame with a timestamp hours ahead is accepted (the
// 60 s first-timestamp guard is off for pairs) and the window grows to it.
func TestPairRegressPairHostileFirstTimestamp(t *testing.T) {
	p := newPairNode(t)
	c1 := p.open(1, 0, 0)
	mb := allocMB(func() {
		c1.seq++
		c1.s.Frame(&callrec.Frame{Seq: c1.seq, Track: callrec.TrackInbound, Chunk: 1, TimestampMS: 20_000_000, Payload: make([]byte, 160)})
	})
	t.Logf("one frame with timestamp 20,000,000 ms allocated %.0f MB (2^31 ms would be ~17 GB)", mb)
	if mb > 50 {
		t.Errorf("one hostile frame allocated %.0f MB", mb)
	}
}

// Non-pair continuation segment: the second track's first frame is unguarded.
func TestPairRegressContinuationHostileSecondTrack(t *testing.T) {
	p := newPairNode(t)
	info := callrec.StreamInfo{StreamSID: "MZc", CallSID: "CAc", TrackNames: []string{"inbound", "outbound"}}
	sink, _, err := p.n.OpenStream(t.Context(), link.StreamKey{Adapter: "x", ID: 9}, link.OpenRequest{Info: info, Resume: &link.Resume{INUM: "prev"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sink.(*source)
	s.Frame(&callrec.Frame{Seq: 1, Track: callrec.TrackInbound, Chunk: 40000, TimestampMS: 800000, Payload: make([]byte, 160)})
	mb := allocMB(func() {
		s.Frame(&callrec.Frame{Seq: 2, Track: callrec.TrackOutbound, Chunk: 4_000_000_000, TimestampMS: 20_000_000, Payload: make([]byte, 160)})
	})
	t.Logf("continuation: hostile first outbound frame allocated %.0f MB", mb)
	if mb > 50 {
		t.Errorf("one hostile frame allocated %.0f MB", mb)
	}
}
