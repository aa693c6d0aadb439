package recorder

import (
	"log/slog"
	"sync"
	"time"

	"callrec"
	"callrec/internal/link"
)

const maxListedErrors = 100

// recording is one active INUM: it receives a stream's records from the
// link, places frames, and is flushed to its blob by the node's flusher.
type recording struct {
	n   *Node
	key link.StreamKey
	log *slog.Logger

	mu         sync.Mutex // placement state, taken per frame
	meta       callrec.Recording
	declared   [callrec.NumTracks]bool
	tracks     [callrec.NumTracks]trackState
	win        window
	patches    []patch
	patched    int64
	pending    ackQueue
	durable    uint64 // highest seq known durable
	sentAck    uint64 // highest seq acknowledged to the adapter
	replier    *link.Replier
	detachedAt time.Time
	closing    *link.Close
	closeSeq   uint64
	errs       []callrec.StreamError
	errCounts  map[string]int
	reported   int64  // frames counted in metrics
	lastSeq    uint64 // highest record sequence received
	// origin is the stream position (samples) of the file's first sample:
	// 0, except in a segment that continues another INUM, where the file
	// starts shortly before the first frame instead of at stream start.
	origin    int64
	originSet bool

	ioMu     sync.Mutex // file I/O: flushes and finalize
	blob     Blob
	synced   int64 // data bytes in the file and in its header at the last sync
	out      []byte
	hdr      []byte
	finished bool
}

// patch is a late frame whose place is already in the file.
type patch struct {
	pos  int64
	t    callrec.Track
	data []byte
}

var _ link.StreamSink = (*recording)(nil)

// Frame implements link.StreamSink: it places the frame and queues its ack.
func (r *recording) Frame(f *callrec.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fresh(f.Seq) {
		return
	}
	if !r.declared[f.Track] {
		r.errorLocked(callrec.ErrKindBadField, "frame for track "+f.Track.String()+" the stream did not announce")
		r.pending.push(f.Seq, 0)
		return
	}
	ts := &r.tracks[f.Track]
	pos, w, p, why := ts.place(f.Chunk, f.TimestampMS, len(f.Payload))
	switch p {
	case duplicate:
		r.pending.push(f.Seq, 0)
		return
	case rejected:
		r.errorLocked(callrec.ErrKindBadField, why)
		r.pending.push(f.Seq, 0)
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
	if pos < r.win.base && len(data) > 0 {
		// Late: part or all of its place is already in the file.
		k := min(int64(w), r.win.base-pos)
		r.patches = append(r.patches, patch{pos: pos, t: f.Track, data: append([]byte(nil), data[:k]...)})
		r.patched++
		data, pos = data[k:], pos+k
	}
	if len(data) > 0 {
		r.win.put(f.Track, pos, data)
	}
	r.pending.push(f.Seq, pos+int64(len(data)))
}

// Note implements link.StreamSink.
func (r *recording) Note(seq uint64, n link.Note) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fresh(seq) {
		return
	}
	if n.Kind == callrec.ErrKindOverflow {
		if t, ok := callrec.ParseTrack(n.Track); ok {
			r.tracks[t].addOverflow(n.FromChunk, n.ToChunk, n.Frames)
		}
	}
	r.addErrorLocked(n.StreamError)
	r.pending.push(seq, 0)
}

// Close implements link.StreamSink: the stream ended; finish the recording.
func (r *recording) Close(seq uint64, c link.Close) {
	r.mu.Lock()
	if !r.fresh(seq) || r.closing != nil {
		r.mu.Unlock()
		return
	}
	r.closing, r.closeSeq = &c, seq
	r.mu.Unlock()
	r.n.wg.Go(func() { r.n.finalize(r, c.Reason, c.Detail) })
}

// Detach implements link.StreamSink.
func (r *recording) Detach(rp *link.Replier) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replier == rp {
		r.replier = nil
		r.detachedAt = time.Now()
	}
}

// reattach binds the recording to a new connection after the adapter came back.
func (r *recording) reattach(rp *link.Replier) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replier = rp
	r.detachedAt = time.Time{}
	r.sentAck = 0 // resend the durable ack on the new connection
	return r.lastSeqLocked()
}

func (r *recording) lastSeqLocked() uint64 { return r.lastSeq }

// fresh reports whether a record is new and marks it seen. After the adapter
// reconnects, the old connection may still deliver records the new one
// replays: the recording, not the connection, decides what it already has.
// Called with r.mu held.
func (r *recording) fresh(seq uint64) bool {
	if seq <= r.lastSeq {
		return false
	}
	r.lastSeq = seq
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
	if len(r.errs) > 0 {
		a.Errors = append([]callrec.StreamError(nil), r.errs...)
		a.ErrorCounts = make(map[string]int, len(r.errCounts))
		for k, v := range r.errCounts {
			a.ErrorCounts[k] = v
		}
	}
	return a
}
