package simulate

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"callrec"
)

// TrackResult is what one call sent on one track.
type TrackResult struct {
	// Frames is the number of frames generated, dropped ones included.
	Frames int64
	// Dropped, Duplicated and Reordered count the frames lost in transit,
	// sent twice, and sent after their successor.
	Dropped, Duplicated, Reordered int64
	// DroppedChunks, DuplicatedChunks and ReorderedChunks list exactly which
	// chunks, in the order it happened. ReorderedChunks holds the delayed
	// chunk of each swapped pair: the one that arrived after a higher chunk.
	DroppedChunks, DuplicatedChunks, ReorderedChunks []uint32
	// Timeline (KeepAudio only) is the track as a recorder should
	// reconstruct it: chunk k's 160 bytes at offset (k-1)*160, μ-law silence
	// (0xFF) for dropped chunks.
	Timeline []byte
	// SHA256 is the hex SHA-256 of the full timeline, computed even
	// without KeepAudio. It is empty for a track the call did not carry.
	SHA256 string
}

// CallResult is the outcome of one simulated call.
type CallResult struct {
	// Index is the call's number in the run, from 0.
	Index int
	// CallSID and StreamSID identify the call in start and stop.
	CallSID, StreamSID string
	// Tracks is indexed by callrec.Track.
	Tracks [callrec.NumTracks]TrackResult
	// MessagesSent counts every message written, connected and duplicates
	// included.
	MessagesSent int64
	// LastSeq is the last sequenceNumber assigned (that of stop when it
	// was sent; dropped frames consume numbers too).
	LastSeq uint64
	// StopSent reports that stop was sent; Cut that the TCP connection was
	// cut on purpose (CutAfter).
	StopSent, Cut bool
	// CloseCode and CloseText are set if the server closed the socket
	// (1006 when it dropped the connection without a close frame).
	CloseCode int
	CloseText string
	// Err is a dial, handshake or write failure; a refused handshake is a
	// *ws.HandshakeError, a close by the server mid-stream a *ws.CloseError.
	Err error
	// Started and Ended bracket the call, from dial to close.
	Started, Ended time.Time
	// CallFrame is the frame of the call's audio that chunk 1 carries: chunk
	// k carries call frame CallFrame+k-1, whose audio CallAudio returns. It
	// is 0 for a stream that is a call of its own (Run) and for the first
	// stream of a call; a stream the Twilio stand-in starts later on the same
	// call starts where that call's media clock is (see CallClock), so the
	// streams of one call carry the same audio, offset by CallFrame.
	CallFrame int
	// LoopFrame is the frame of the audio loop chunk 1 carries (the call's
	// start in the loop plus CallFrame, modulo the loop's length).
	LoopFrame int
}

// Summary is the outcome of Run.
type Summary struct {
	// Calls holds one result per call, by index.
	Calls []CallResult
	// FramesSent counts the media messages written per track (duplicates
	// included, dropped frames not).
	FramesSent [callrec.NumTracks]int64
	// Failed counts calls with an Err.
	Failed int
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Run simulates cfg.Calls concurrent Media Streams and waits for them all.
// It returns an error only for a bad configuration; each call's failure is
// in its CallResult.Err. Cancelling ctx ends the calls early with a stop
// message, as a hang-up would; calls not yet started by the ramp-up fail
// with ctx's error. No goroutine outlives Run.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	loops() // decode the audio once, before the clock starts
	began := time.Now()
	sum := &Summary{Calls: make([]CallResult, s.calls)}
	sent := make([][callrec.NumTracks]int64, s.calls)
	var wg sync.WaitGroup
	for i := range s.calls {
		wg.Go(func() {
			res := &sum.Calls[i]
			if delay := time.Duration(int64(s.RampUp) * int64(i) / int64(s.calls)); delay > 0 {
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
					res.Index = i
					res.Err = fmt.Errorf("call %d not started: %w", i, context.Cause(ctx))
					return
				}
			}
			c := newCall(s, i, res)
			c.run(ctx)
			for t, ts := range c.tracks {
				sent[i][t] = ts.sent
			}
		})
	}
	wg.Wait()
	for i := range sum.Calls {
		if sum.Calls[i].Err != nil {
			sum.Failed++
		}
		for t := range sent[i] {
			sum.FramesSent[t] += sent[i][t]
		}
	}
	sum.Elapsed = time.Since(began)
	s.log.Info("simulation done", "calls", s.calls, "failed", sum.Failed,
		"frames_inbound", sum.FramesSent[callrec.TrackInbound],
		"frames_outbound", sum.FramesSent[callrec.TrackOutbound], "elapsed", sum.Elapsed)
	return sum, nil
}

// WriteText writes a human summary: calls ok and failed, frames per track,
// impairments, then per call its stream SID and each track's SHA-256.
func (s *Summary) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	var imp [callrec.NumTracks][3]int64
	for i := range s.Calls {
		for t := range s.Calls[i].Tracks {
			tr := &s.Calls[i].Tracks[t]
			imp[t][0] += tr.Dropped
			imp[t][1] += tr.Duplicated
			imp[t][2] += tr.Reordered
		}
	}
	ew.printf("calls: %d ok, %d failed, elapsed %s\n", len(s.Calls)-s.Failed, s.Failed, s.Elapsed.Round(time.Millisecond))
	for t := range callrec.NumTracks {
		ew.printf("%-8s frames sent %d, dropped %d, duplicated %d, reordered %d\n",
			callrec.Track(t), s.FramesSent[t], imp[t][0], imp[t][1], imp[t][2])
	}
	for i := range s.Calls {
		c := &s.Calls[i]
		status := "ok"
		switch {
		case c.Err != nil:
			status = "FAILED: " + c.Err.Error()
		case c.Cut:
			status = "cut"
		case !c.StopSent:
			status = "no stop"
		}
		ew.printf("call %d %s %s: %d messages, %s", c.Index, c.StreamSID, c.CallSID, c.MessagesSent, status)
		if c.CloseCode != 0 {
			ew.printf(" (server closed: %d %q)", c.CloseCode, c.CloseText)
		}
		ew.printf("\n")
		for t := range c.Tracks {
			tr := &c.Tracks[t]
			if tr.SHA256 == "" {
				continue
			}
			ew.printf("  %-8s %5d frames sha256 %s\n", callrec.Track(t), tr.Frames, tr.SHA256)
		}
	}
	return ew.err
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	if _, err := fmt.Fprintf(e.w, format, args...); err != nil {
		e.err = fmt.Errorf("write summary: %w", err)
	}
}

// NewSID returns a fake but well-formed Twilio SID: the 2-letter prefix
// (CA, MZ, AC…) and 32 lowercase hex digits drawn from r, or from
// math/rand/v2's global source when r is nil.
func NewSID(prefix string, r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < len(b); i += 8 {
		var v uint64
		if r != nil {
			v = r.Uint64()
		} else {
			v = rand.Uint64()
		}
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return prefix + hex.EncodeToString(b[:])
}
