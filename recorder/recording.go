package recorder

import (
	"log/slog"
	"sync"
	"time"

	"callrec"
	"callrec/internal/link"
)

const maxListedErrors = 100

// recording is one active INUM: it receives the records of its sources
// (one link stream, or each copy of a dual-stream pair), places frames, and
// is flushed to its blob by the node's flusher.
type recording struct {
	n   *Node
	log *slog.Logger

	mu        sync.Mutex // placement state, taken per frame
	meta      callrec.Recording
	declared  [callrec.NumTracks]bool
	tracks    [callrec.NumTracks]trackState
	win       window
	patches   []patch
	patched   int64
	srcs      []*source
	closing   *link.Close // set once the recording is being finished
	errs      []callrec.StreamError
	errCounts map[string]int
	reported  int64 // frames counted in metrics
	// origin is the stream position (samples) of the file's first sample:
	// 0, except in a segment that continues another INUM, where the file
	// starts shortly before the first frame instead of at stream start.
	origin    int64
	originSet bool
	// pair is set for a merged recording of a dual-stream pair.
	pair *pairState

	ioMu     sync.Mutex // file I/O: flushes and finalize
	blob     Blob
	synced   int64 // data bytes in the file and in its header at the last sync
	fileBase int64 // window position of the file's first sample (pairs; else 0)
	out      []byte
	hdr      []byte
	finished bool
}

// source is one link stream feeding a recording. It implements
// link.StreamSink; its state is guarded by the recording's mu.
type source struct {
	r    *recording
	key  link.StreamKey
	info callrec.StreamInfo

	replier    *link.Replier
	detachedAt time.Time
	closing    *link.Close
	closeSeq   uint64
	pending    ackQueue
	durable    uint64 // highest seq known durable
	popped     uint64 // highest seq the last flush took from pending
	sentAck    uint64 // highest seq acknowledged to the adapter
	lastSeq    uint64 // highest record sequence received
	endedAt    time.Time
	endReason  string

	cp *copyState // for a copy of a dual-stream pair
}

// patch is a late frame whose place is already in the file.
type patch struct {
	pos  int64
	t    callrec.Track
	data []byte
}

var _ link.StreamSink = (*source)(nil)

// Frame implements link.StreamSink: it places the frame and queues its ack.
func (s *source) Frame(f *callrec.Frame) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.fresh(f.Seq) {
		return
	}
	if r.pair != nil {
		r.pairFrameLocked(s, f)
		return
	}
	if !r.declared[f.Track] {
		r.errorLocked(callrec.ErrKindBadField, "frame for track "+f.Track.String()+" the stream did not announce")
		s.pending.push(f.Seq, 0)
		return
	}
	ts := &r.tracks[f.Track]
	if ts.continues && !ts.started && r.originSet {
		// The first frame of the other track: near the first one's, or a
		// bad timestamp would make the window span the distance.
		if d := int64(f.TimestampMS)*callrec.SamplesPerMS - (r.origin + r.n.lagSamples); d > maxSampleJump || d < -maxSampleJump {
			r.errorLocked(callrec.ErrKindBadField, "first frame of a track far from the other track's")
			s.pending.push(f.Seq, 0)
			return
		}
	}
	pos, w, p, why := ts.place(f.Chunk, f.TimestampMS, len(f.Payload))
	switch p {
	case duplicate:
		s.pending.push(f.Seq, 0)
		return
	case rejected, early:
		r.errorLocked(callrec.ErrKindBadField, why)
		s.pending.push(f.Seq, 0)
		return
	}
	data := f.Payload[:w]
	if ts.continues {
		if !r.originSet {
			// Leave room for the other track, which may be a little behind.
			r.origin, r.originSet = max(0, pos-r.n.lagSamples), true
			r.meta.Audio.OffsetMS = r.origin / callrec.SamplesPerMS
		}
		pos -= r.origin
		if pos < 0 { // more than the lag limit before the first frame: cannot happen with Twilio's pacing
			data, pos = data[min(int64(len(data)), -pos):], 0
		}
	}
	r.writeLocked(s, f.Seq, f.Track, pos, data)
}

// writeLocked puts placed audio into the window, or queues a patch for
// the part whose place is already in the file, and queues the record's ack.
func (r *recording) writeLocked(s *source, seq uint64, t callrec.Track, pos int64, data []byte) {
	w := len(data)
	if pos < r.win.base && len(data) > 0 {
		// Late: part or all of its place is already in the file.
		k := min(int64(w), r.win.base-pos)
		r.patches = append(r.patches, patch{pos: pos, t: t, data: append([]byte(nil), data[:k]...)})
		r.patched++
		data, pos = data[k:], pos+k
	}
	if len(data) > 0 {
		r.win.put(t, pos, data)
	}
	s.pending.push(seq, pos+int64(len(data)))
}

// Note implements link.StreamSink.
func (s *source) Note(seq uint64, n link.Note) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.fresh(seq) {
		return
	}
	if s.cp != nil && s.cp.align == "" {
		s.cp.hold(heldRecord{seq: seq, note: &n})
		return
	}
	r.noteLocked(s, seq, n)
}

func (r *recording) noteLocked(s *source, seq uint64, n link.Note) {
	if n.Kind == callrec.ErrKindOverflow {
		if t, ok := callrec.ParseTrack(n.Track); ok {
			from, to := n.FromChunk, n.ToChunk
			if s.cp != nil { // onto the recording's chunks
				from, to = uint32(max(0, int64(from)+s.cp.off)), uint32(max(0, int64(to)+s.cp.off))
			}
			r.tracks[t].addOverflow(from, to, n.Frames)
		}
	}
	r.addErrorLocked(n.StreamError)
	s.pending.push(seq, 0)
}

// Close implements link.StreamSink: the stream ended. A recording of one
// stream finishes; a merged one finishes when its last copy has ended.
func (s *source) Close(seq uint64, c link.Close) {
	r := s.r
	r.mu.Lock()
	if !s.fresh(seq) || s.closing != nil || r.closing != nil {
		r.mu.Unlock()
		return
	}
	s.closing, s.closeSeq = &c, seq
	if r.pair == nil {
		r.closing = &c
		r.mu.Unlock()
		r.n.wg.Go(func() { r.n.finalize(r, c.Reason, c.Detail) })
		return
	}
	if s.cp.align == "" {
		r.alignLocked(s, callrec.AlignClock, s.cp.est(r))
	}
	s.endLocked(c.Reason)
	reason, detail, done := r.pairDoneLocked(time.Now())
	if done {
		r.closing = &link.Close{Reason: reason, Detail: detail}
	}
	r.mu.Unlock()
	if done {
		r.n.wg.Go(func() { r.n.finalize(r, reason, detail) })
	}
}

// endLocked marks a source as ended: it takes no more records.
func (s *source) endLocked(reason string) {
	if s.endedAt.IsZero() {
		s.endedAt, s.endReason = time.Now().UTC(), reason
	}
}

func (s *source) ended() bool { return !s.endedAt.IsZero() }

// Detach implements link.StreamSink.
func (s *source) Detach(rp *link.Replier) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.replier == rp {
		s.replier = nil
		s.detachedAt = time.Now()
	}
}

// reattach binds the source to a new connection after the adapter came back.
func (s *source) reattach(rp *link.Replier) uint64 {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.replier = rp
	s.detachedAt = time.Time{}
	if s.cp != nil && s.endReason == callrec.EndLinkLost && s.r.closing == nil {
		// A copy declared lost whose adapter came back while the merged
		// recording still runs: it carries on.
		s.endedAt, s.endReason = time.Time{}, ""
	}
	s.sentAck = 0 // resend the durable ack on the new connection
	return s.lastSeq
}

// fresh reports whether a record is new and marks it seen. After the adapter
// reconnects, the old connection may still deliver records the new one
// replays: the source, not the connection, decides what it already has.
// A source that ended takes nothing more. Called with r.mu held.
func (s *source) fresh(seq uint64) bool {
	if seq <= s.lastSeq || s.ended() {
		return false
	}
	s.lastSeq = seq
	return true
}

func (r *recording) errorLocked(kind, detail string) {
	r.addErrorLocked(callrec.StreamError{At: time.Now().UTC(), Kind: kind, Detail: detail})
}

func (r *recording) addErrorLocked(e callrec.StreamError) {
	if r.errCounts == nil {
		r.errCounts = map[string]int{}
	}
	r.errCounts[e.Kind]++
	if len(r.errs) < maxListedErrors {
		r.errs = append(r.errs, e)
	}
	r.n.m.streamErrors.WithLabelValues(e.Kind).Inc()
}

// flushPoint returns how far the audio can be written: as far as every
// announced track has audio, but not past a gap a late frame may still fill,
// unless a track lags the other by more than the lag limit; at the end,
// everything.
func (r *recording) flushPointLocked(final bool) int64 {
	w := &r.win
	if r.pair != nil && !r.pair.ready {
		if !final && !r.pairReadyLocked(time.Now()) {
			return w.base
		}
		r.startFileLocked()
	}
	hiMax := w.base
	for t, ok := range r.declared {
		if ok {
			hiMax = max(hiMax, w.hi[t])
		}
	}
	if final {
		return max(hiMax, w.end())
	}
	f := hiMax
	for t, ok := range r.declared {
		if !ok {
			continue
		}
		f = min(f, w.hi[t])
		if hb := r.tracks[t].holdback(w.base); hb >= 0 {
			f = min(f, hb)
		}
	}
	f = max(f, hiMax-r.n.lagSamples)
	return max(f, w.base)
}

// snapshotLocked returns the recording's metadata with live accounting.
func (r *recording) snapshotLocked() callrec.Recording {
	m := r.meta
	m.Accounting = r.accountingLocked()
	m.Audio.DataBytes = r.synced
	m.Audio.DurationMS = r.synced / int64(callrec.NumTracks) / callrec.SamplesPerMS
	m.UpdatedAt = time.Now().UTC()
	return m
}

func (r *recording) accountingLocked() callrec.Accounting {
	a := callrec.Accounting{Tracks: []callrec.TrackAccounting{}, Patched: r.patched}
	var expected int64
	for t, ok := range r.declared {
		if !ok {
			continue
		}
		ta := r.tracks[t].accounting(callrec.Track(t))
		if r.pair != nil && ta.LastChunk > 0 {
			ta.Supply, ta.SupplyOmit = r.pair.supplyRuns(callrec.Track(t), ta.FirstChunk, ta.LastChunk)
			r.pairTrackAccounting(&ta, callrec.Track(t))
		}
		a.Tracks = append(a.Tracks, ta)
		a.Messages.MediaSeen += ta.Received
		expected += ta.Expected
	}
	if r.closing != nil && r.closing.StopSeq >= 2 {
		// start is message 1 and stop the last: media messages sent = stop - 2.
		a.Messages.StopSeq = r.closing.StopSeq
		a.Messages.MediaSent = int64(r.closing.StopSeq) - 2
		a.Messages.TailMissed = max(0, a.Messages.MediaSent-expected)
	}
	if r.pair != nil {
		a.Copies = r.copiesLocked()
	}
	if len(r.errs) > 0 {
		a.Errors = append([]callrec.StreamError(nil), r.errs...)
		a.ErrorCounts = make(map[string]int, len(r.errCounts))
		for k, v := range r.errCounts {
			a.ErrorCounts[k] = v
		}
	}
	return a
}
