package recorder

import (
	"testing"

	"callrec"
	"callrec/internal/link"
)

// Continuation of a pair (recorder failover): the origin copy's first
// record happens to be a bad frame (garbage chunk). Its chunk fixes the
// origin's offset, and every good frame after it maps before chunk 1:
// dropped as before_start and acknowledged.
func TestPairRegressPairContinuationBadFirstFrame(t *testing.T) {
	p := newPairNode(t)
	info := callrec.StreamInfo{StreamSID: "MZ1", CallSID: "CA9", TrackNames: []string{"inbound", "outbound"},
		StartedAt: p.epoch, Adapter: "a1", Pair: &callrec.StreamPair{Group: "g", Copy: 1, Copies: 2}}
	sink, _, err := p.n.OpenStream(t.Context(), link.StreamKey{Adapter: "a1", ID: 1}, link.OpenRequest{Info: info, Resume: &link.Resume{INUM: "prev"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sink.(*source)
	r := s.r
	a := newCallAudio(200, 13)
	seq := uint64(1)
	s.Frame(&callrec.Frame{Seq: seq, Track: callrec.TrackInbound, Chunk: 4_000_000_000, TimestampMS: 0, Payload: make([]byte, 160)})
	for k := 0; k < 200; k++ {
		for tr := range callrec.NumTracks {
			seq++
			s.Frame(&callrec.Frame{Seq: seq, Track: callrec.Track(tr), Chunk: uint32(30000 + k), TimestampMS: uint32(30000+k-1) * 20, Payload: a.frame(callrec.Track(tr), k)})
		}
	}
	r.mu.Lock()
	before, pend := s.cp.before, s.pending.len()
	r.mu.Unlock()
	s.Close(seq+1, link.Close{Reason: callrec.EndStop})
	rec, ch := p.finished(r)
	t.Logf("copy 1 before_start %d, pending %d; file %d samples; accounting %+v", before, pend, len(ch[0]), rec.Accounting.Tracks)
	if len(ch[0]) < 200*160 {
		t.Errorf("%d of 400 good frames dropped (and acknowledged) after one bad first frame", before)
	}
}
