package link

import (
	"encoding/json"
	"sync"
	"time"

	"callrec"
)

// Stream is one Media Stream on its way to a recorder. Frame, Note and Close
// are called by the stream's single reader (the adapter's read loop) and
// never block.
type Stream struct {
	c    *Client
	id   uint32
	info callrec.StreamInfo

	mu       sync.Mutex
	buf      []byte    // retained records: [ackOff, sentOff) sent, [sentOff, len) unsent
	ackOff   int       // bytes before are acknowledged
	sentOff  int       // bytes before are sent on the current connection
	recs     []recMeta // records from ackOff on, in seq order
	seq      uint64    // last assigned
	acked    uint64
	inum     callrec.INUM
	needOpen bool
	sentOpen bool // an OPEN went out on some connection: re-opens are resumes
	queued   bool // in the client's ready list
	closing  bool
	finished bool // done is closed; set under mu
	drops    [callrec.NumTracks]dropRun
	dropped  int64
	frames   int64 // frames queued
	// what publishLocked has added to the client's stats
	pubRetained, pubFrames int64
	lastSent               time.Time
	// The record timed for the ack latency metric (probeSeq 0: none);
	// only with ClientConfig.Metrics.
	probeSeq uint64
	probeAt  time.Time

	done  chan struct{}
	once  sync.Once
	reply *CloseReply
	err   error
}

type recMeta struct {
	seq uint64
	end int
}

// dropRun is a run of frames of one track dropped for lack of budget, not
// yet reported to the recorder.
type dropRun struct {
	from, to uint32
	n        int64
}

// ID is the stream's id on this client.
func (s *Stream) ID() uint32 { return s.id }

// INUM returns the recording's INUM once the recorder has answered ("" before).
func (s *Stream) INUM() callrec.INUM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inum
}

// Done is closed when the recorder has finished the stream (see Result).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Result returns the recorder's close reply, or the error that ended the
// stream. Valid after Done is closed.
func (s *Stream) Result() (*CloseReply, error) { return s.reply, s.err }

// Failed returns the error that ended the stream early (the recorder failed
// it, or the client stopped), or nil while it is open or after a clean close.
func (s *Stream) Failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finished {
		return nil
	}
	return s.err
}

// Dropped returns how many frames were dropped because the retention budget
// was exceeded.
func (s *Stream) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Retained returns the bytes kept for this stream until acknowledged.
func (s *Stream) Retained() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf) - s.ackOff
}

// Acked returns the highest acknowledged sequence number.
func (s *Stream) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Frame queues an audio frame and assigns its sequence number. It returns
// false when the frame was dropped because the stream's retention budget is
// exhausted (the recorder is not acknowledging); the drop is reported to the
// recorder as an overflow gap as soon as there is room again.
func (s *Stream) Frame(f *callrec.Frame) bool {
	s.mu.Lock()
	if s.closing || s.finished {
		s.mu.Unlock()
		return false
	}
	if len(s.buf)-s.ackOff+len(f.Payload)+64 > s.c.cfg.RetainBytes {
		d := &s.drops[f.Track]
		if d.n == 0 {
			d.from = f.Chunk
		}
		d.to = f.Chunk
		d.n++
		s.dropped++
		s.mu.Unlock()
		s.c.Stats.FramesDropped.Add(1)
		return false
	}
	s.flushDrops()
	s.seq++
	f.Seq = s.seq
	s.buf = appendFrame(s.buf, f)
	s.recs = append(s.recs, recMeta{seq: s.seq, end: len(s.buf)})
	s.frames++
	wake := !s.queued
	s.queued = true
	s.mu.Unlock()
	if wake {
		s.c.enqueue(s)
	}
	return true
}

// flushDrops turns pending drop runs into overflow notes. Called with s.mu held.
func (s *Stream) flushDrops() {
	for t := range s.drops {
		d := &s.drops[t]
		if d.n == 0 {
			continue
		}
		s.appendNoteLocked(Note{
			StreamError: callrec.StreamError{At: time.Now().UTC(), Kind: callrec.ErrKindOverflow,
				Detail: "adapter retention budget exceeded: recorder not acknowledging"},
			Track: callrec.Track(t).String(), FromChunk: d.from, ToChunk: d.to, Frames: d.n,
		})
		*d = dropRun{}
	}
}

// Note queues an observation (bad input, a drop) for the recording.
func (s *Stream) Note(n Note) {
	s.mu.Lock()
	if s.closing || s.finished {
		s.mu.Unlock()
		return
	}
	s.appendNoteLocked(n)
	wake := !s.queued
	s.queued = true
	s.mu.Unlock()
	if wake {
		s.c.enqueue(s)
	}
}

func (s *Stream) appendNoteLocked(n Note) {
	body, _ := json.Marshal(n) // a struct of strings and ints: cannot fail
	s.seq++
	s.buf = appendBlob(s.buf, recNote, s.seq, body)
	s.recs = append(s.recs, recMeta{seq: s.seq, end: len(s.buf)})
}

// Close queues the end of the stream. The recorder finishes the recording
// and answers; Done is closed then.
func (s *Stream) Close(cl Close) {
	s.mu.Lock()
	if s.closing || s.finished {
		s.mu.Unlock()
		return
	}
	s.flushDrops()
	body, _ := json.Marshal(cl)
	s.seq++
	s.buf = appendBlob(s.buf, recClose, s.seq, body)
	s.recs = append(s.recs, recMeta{seq: s.seq, end: len(s.buf)})
	s.closing = true
	wake := !s.queued
	s.queued = true
	s.mu.Unlock()
	if wake {
		s.c.enqueue(s)
	}
}

// rewind prepares the stream for a new connection: re-open, then resend
// everything not acknowledged. It returns the bytes that were sent on the
// last connection and go again. Called with the client's lock held.
func (s *Stream) rewind() int {
	s.mu.Lock()
	replay := s.sentOff - s.ackOff
	s.needOpen = true
	s.sentOff = s.ackOff
	s.queued = true
	s.probeSeq = 0 // its send time is that of the lost connection
	s.mu.Unlock()
	return replay
}

// drainTo appends the stream's pending messages (OPEN, RECORDS) to out.
func (s *Stream) drainTo(out []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = false
	s.publishLocked()
	if s.needOpen {
		req := OpenRequest{Info: s.info}
		if s.acked > 0 || s.inum != "" || s.sentOpen {
			req.Resume = &Resume{INUM: s.inum, AckedSeq: s.acked}
		}
		body, _ := json.Marshal(req)
		var off int
		out, off = beginMessage(out, msgOpen)
		out = appendU32(out, s.id)
		out = append(out, body...)
		out = finishMessage(out, off)
		s.needOpen, s.sentOpen = false, true
	}
	if s.sentOff < len(s.buf) {
		var off int
		out, off = beginMessage(out, msgRecords)
		out = appendU32(out, s.id)
		out = append(out, s.buf[s.sentOff:]...)
		out = finishMessage(out, off)
		s.sentOff = len(s.buf)
		s.lastSent = time.Now()
		if s.probeSeq == 0 && s.c.cfg.Metrics != nil {
			s.probeSeq, s.probeAt = s.seq, s.lastSent
		}
	}
	return out
}

func (s *Stream) opened(r OpenReply) {
	s.mu.Lock()
	s.inum = r.INUM
	s.mu.Unlock()
}

// ack releases every record up to seq.
func (s *Stream) ack(seq uint64) {
	s.mu.Lock()
	if seq <= s.acked {
		s.mu.Unlock()
		return
	}
	if s.probeSeq != 0 && seq >= s.probeSeq {
		s.c.cfg.Metrics.observeAck(time.Since(s.probeAt))
		s.probeSeq = 0
	}
	i := 0
	for i < len(s.recs) && s.recs[i].seq <= seq {
		i++
	}
	if i == 0 {
		s.acked = seq
		s.mu.Unlock()
		return
	}
	end := s.recs[i-1].end
	s.ackOff = end
	// Drop the acknowledged records in place, so the slice's storage is
	// reused instead of regrown after every ack.
	s.recs = s.recs[:copy(s.recs, s.recs[i:])]
	s.acked = seq
	if !s.lastSent.IsZero() {
		s.c.Stats.AckLatencyNsum.Add(int64(time.Since(s.lastSent)))
	}
	s.compact()
	s.publishLocked()
	s.mu.Unlock()
	s.c.Stats.Acks.Add(1)
}

// publishLocked folds the stream's counters into the client's shared ones.
// It runs once per batch or ack, not per frame: shared atomics updated by
// every read loop would bounce one cache line between cores 100 times a
// second per stream. Called with s.mu held.
func (s *Stream) publishLocked() {
	if d := int64(len(s.buf)-s.ackOff) - s.pubRetained; d != 0 {
		s.c.Stats.RetainedBytes.Add(d)
		s.pubRetained += d
	}
	if d := s.frames - s.pubFrames; d != 0 {
		s.c.Stats.FramesQueued.Add(d)
		s.pubFrames = s.frames
	}
}

// compact moves retained bytes to the front once the acknowledged prefix is
// the larger part of the buffer. Called with s.mu held.
func (s *Stream) compact() {
	if s.ackOff < 4096 || s.ackOff < len(s.buf)/2 {
		return
	}
	n := copy(s.buf, s.buf[s.ackOff:])
	shift := s.ackOff
	s.buf = s.buf[:n]
	s.sentOff = max(0, s.sentOff-shift)
	for i := range s.recs {
		s.recs[i].end -= shift
	}
	s.ackOff = 0
	if cap(s.recs) > 4*len(s.recs)+64 {
		s.recs = append([]recMeta(nil), s.recs...)
	}
}

func (s *Stream) finish(r *CloseReply, err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.reply, s.err = r, err
		s.buf, s.recs = nil, nil
		s.finished = true
		s.ackOff, s.sentOff = 0, 0
		s.publishLocked()
		s.c.Stats.StreamsActive.Add(-1)
		// Close done before unlocking: Frame, Note and Close check it under
		// s.mu, and must not append to the buffer just released.
		close(s.done)
		s.mu.Unlock()
	})
}
