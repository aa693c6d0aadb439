package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"callrec"
	"callrec/recorder/bolt"

	"github.com/google/go-cmp/cmp"
)

// testNode is the node id the helpers claim.
const testNode = 42

// t0 is a StartedAt with nanoseconds, to check they survive the round trip.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// timeEqual compares times by instant, ignoring location and monotonic clock.
var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// openIndex opens the index at path and closes it when the test ends.
func openIndex(tb testing.TB, path string) *bolt.Index {
	tb.Helper()
	x, err := bolt.Open(path)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := x.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return x
}

// newIndex opens a fresh index in a temporary dir, claimed by testNode.
func newIndex(tb testing.TB) *bolt.Index {
	tb.Helper()
	x := openIndex(tb, filepath.Join(tb.TempDir(), "index.db"))
	if err := x.ClaimNode(testNode); err != nil {
		tb.Fatalf("ClaimNode: %v", err)
	}
	return x
}

// basicRecording is a minimal valid recording in state recording.
func basicRecording(inum callrec.INUM, started time.Time, callSID, streamSID string) *callrec.Recording {
	return &callrec.Recording{
		INUM:      inum,
		Node:      inum.Node(),
		State:     callrec.StateRecording,
		StartedAt: started,
		UpdatedAt: started,
		Stream: callrec.StreamInfo{
			CallSID:   callSID,
			StreamSID: streamSID,
			StartedAt: started,
		},
		Audio: callrec.AudioInfo{
			Ref:        "audio/" + string(inum) + ".wav",
			Format:     "wav/mulaw-stereo",
			SampleRate: callrec.SampleRate,
			Channels:   2,
		},
	}
}

// create stores a basic recording through CreateRecording.
func create(tb testing.TB, x *bolt.Index, started time.Time, callSID, streamSID string) *callrec.Recording {
	tb.Helper()
	r, err := x.CreateRecording(context.Background(), func(inum callrec.INUM) *callrec.Recording {
		return basicRecording(inum, started, callSID, streamSID)
	})
	if err != nil {
		tb.Fatalf("CreateRecording: %v", err)
	}
	return r
}

// fullRecording is a recording with every field set, as a finished call
// with gaps, errors and a crash repair would have.
func fullRecording(inum callrec.INUM, started time.Time) *callrec.Recording {
	at := func(ms int) time.Time { return started.Add(time.Duration(ms) * time.Millisecond) }
	return &callrec.Recording{
		INUM:      inum,
		Node:      inum.Node(),
		State:     callrec.StateInterrupted,
		EndReason: callrec.EndCrash,
		EndDetail: "found open after restart",
		Stream: callrec.StreamInfo{
			StreamSID:        "MZ18ad3ab5a668481ce02b83e7395059f0",
			CallSID:          "CA9a3f1c0b7d2e4f5a6b7c8d9e0f1a2b3c",
			AccountSID:       "AC25e16e9a716a4a1786a7c83f58e30482",
			Tracks:           []callrec.Track{callrec.TrackInbound, callrec.TrackOutbound},
			TrackNames:       []string{"inbound", "outbound"},
			CustomParameters: map[string]string{"agent": "alice", "queue": "billing"},
			Encoding:         "audio/x-mulaw",
			SampleRate:       8000,
			Channels:         1,
			StartedAt:        started.In(time.FixedZone("CET", 3600)),
			Adapter:          "ma-01",
			Remote:           "54.172.60.1:443",
		},
		StartedAt: started,
		StoppedAt: at(61_000),
		Audio: callrec.AudioInfo{
			Ref: "audio/x.wav", Format: "wav/mulaw-stereo", SampleRate: 8000, Channels: 2,
			DataBytes: 976_000, DurationMS: 61_000, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		},
		Accounting: callrec.Accounting{
			Tracks: []callrec.TrackAccounting{
				{
					Track: "inbound", Expected: 3050, Received: 3040, Duplicates: 2, OutOfOrder: 5, Missing: 10,
					FirstChunk: 1, LastChunk: 3050, Samples: 486_400,
					Gaps: []callrec.Gap{
						{Cause: callrec.GapMissing, FromChunk: 100, ToChunk: 105, Frames: 6, StartMS: 1980, EndMS: 2100},
						{Cause: callrec.GapTiming, StartMS: 30_000, EndMS: 30_400},
					},
					GapsOmit: 1,
				},
				{
					Track: "outbound", Expected: 3050, Received: 3046, Missing: 4, FirstChunk: 1, LastChunk: 3050,
					Samples: 487_360, Overflow: 4,
					Gaps: []callrec.Gap{{Cause: callrec.GapOverflow, FromChunk: 2000, ToChunk: 2003, Frames: 4, StartMS: 39_980, EndMS: 40_060}},
				},
			},
			Messages: callrec.MessageAccounting{StopSeq: 6105, MediaSent: 6100, MediaSeen: 6086, TailMissed: 3},
			Errors: []callrec.StreamError{
				{At: at(500), Kind: callrec.ErrKindBadPayload, Detail: "illegal base64 data at input byte 12"},
				{At: at(900), Kind: callrec.ErrKindUnknownEvent, Detail: `event "dtmf2"`},
			},
			ErrorCounts: map[string]int{callrec.ErrKindBadPayload: 3, callrec.ErrKindUnknownEvent: 1},
			Patched:     7,
		},
		UpdatedAt: at(62_000),
		Interrupted: &callrec.Interruption{
			RepairedAt: at(3_600_000), HeaderBytes: 0, RecoveredBytes: 960_000, TruncatedBytes: 1,
		},
	}
}

// inums lists the INUMs of rs.
func inums(rs []*callrec.Recording) []callrec.INUM {
	out := make([]callrec.INUM, len(rs))
	for i, r := range rs {
		out[i] = r.INUM
	}
	return out
}

// mustINUM builds an INUM of testNode.
func mustINUM(tb testing.TB, counter uint64) callrec.INUM {
	tb.Helper()
	n, err := callrec.NewINUM(testNode, counter)
	if err != nil {
		tb.Fatalf("NewINUM: %v", err)
	}
	return n
}

// wantCode fails the test unless err carries the callrec error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := callrec.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// wantCounter fails the test unless the index's counter is n.
func wantCounter(tb testing.TB, x *bolt.Index, n uint64) {
	tb.Helper()
	got, err := x.Counter()
	if err != nil {
		tb.Fatalf("Counter: %v", err)
	}
	if got != n {
		tb.Fatalf("Counter = %d, want %d", got, n)
	}
}
