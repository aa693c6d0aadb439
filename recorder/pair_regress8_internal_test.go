package recorder

import (
	"testing"

	"callrec"
	"callrec/internal/link"
)

// Restarted copies count against maxSources even when ended: the 9th
// stream of a pair starts a second, concurrent recording of the same pair.
func TestPairRegressPairMaxSourcesSplit(t *testing.T) {
	p := newPairNode(t)
	var first *recording
	for i := 1; i <= 9; i++ {
		info := callrec.StreamInfo{StreamSID: "MZ" + string(rune('0'+i)), CallSID: "CA1", TrackNames: []string{"inbound"},
			Pair: &callrec.StreamPair{Group: "g", Copy: 1 + i%2, Copies: 2}}
		sink, _, err := p.n.OpenStream(t.Context(), link.StreamKey{Adapter: "a", ID: uint32(i)}, link.OpenRequest{Info: info}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := sink.(*source)
		if first == nil {
			first = s.r
		}
		if s.r != first {
			t.Errorf("stream %d of the pair went to a second recording %s (first %s); active %d", i, s.r.meta.INUM, first.meta.INUM, p.n.Active())
		}
		if i < 9 && i > 1 {
			s.Close(1, link.Close{Reason: callrec.EndSocketClosed}) // a failed copy, restarted
		}
	}
}
