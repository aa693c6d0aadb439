package mediaadapter

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"callrec"
	"callrec/internal/link"
	"callrec/internal/ws"
	"callrec/mediaadapter/message"
)

// session is one Twilio Media Streams socket. run is its read loop.
type session struct {
	s      *Server
	conn   *ws.Conn
	remote string
	log    *slog.Logger

	parser    message.Parser
	buf       []byte
	connected bool
	urlPair   *callrec.StreamPair // the pair the upgrade's URL names, if any
	reps      []*replica          // the stream's link streams once started: 1, or 2 with dual recording
	streamSID []byte
	frame     callrec.Frame
	stopSeq   uint64 // Twilio's sequenceNumber of stop
	bad       int
	deadline  time.Time

	// counters flushed to Prometheus about once a second, not per message
	nMedia, nDropped int64

	closeMu sync.Mutex
	closing bool // Shutdown asked this session to end
}

// replica is one link stream of the session: the only one, or one of the
// two of a dual-recorded stream. Each has its own retention budget and
// acknowledgements: one replica's trouble never touches the other.
type replica struct {
	n        int // StreamInfo.Replica: 0 (not dual), 1 or 2
	s        *link.Stream
	failed   bool // its recording failed; the other replica carries on
	dropping bool // frames are being dropped: its budget is exhausted
}

// started reports whether the stream's start was received.
func (ss *session) started() bool { return len(ss.reps) > 0 }

// shutdown makes the read loop end with EndShutdown.
func (ss *session) shutdown() {
	ss.closeMu.Lock()
	ss.closing = true
	ss.closeMu.Unlock()
	_ = ss.conn.SendClose(ws.CloseGoingAway, "recorder shutting down")
	// Wake the read loop: it sees the peer's close answer or this deadline.
	_ = ss.conn.SetReadDeadline(time.Now().Add(closeLinger))
}

// closeLinger is how long a closing socket waits for the peer's close frame.
const closeLinger = time.Second

func (ss *session) isShuttingDown() bool {
	ss.closeMu.Lock()
	defer ss.closeMu.Unlock()
	return ss.closing
}

// end describes how a stream ended: the link close reason, the WebSocket
// close code and reason to send (0: none), and whether it is worth a warning.
type end struct {
	reason, detail string
	code           int
	warn           bool
}

func (ss *session) run() {
	cfg := &ss.s.cfg
	ss.setDeadline(cfg.StartTimeout)
	e := ss.loop()
	ss.flushCounters()
	if ss.isShuttingDown() {
		e = end{reason: callrec.EndShutdown, detail: "adapter shut down mid-stream"}
	}
	attrs := []any{callrec.LogKeyReason, e.reason, "detail", e.detail}
	if ss.started() {
		// First the recordings (they finish while the socket lingers), then the socket.
		attrs = append(attrs, callrec.LogKeyINUM, ss.reps[0].s.INUM()) // ss.log has the stream SID
		if len(ss.reps) > 1 {
			attrs = append(attrs, "inum_replica2", ss.reps[1].s.INUM())
		}
		for _, r := range ss.reps {
			r.s.Close(link.Close{Reason: e.reason, Detail: e.detail, StopSeq: ss.stopSeq})
		}
	}
	if e.code != 0 {
		_ = ss.conn.CloseWith(e.code, e.detail, closeLinger)
	} else {
		_ = ss.conn.Close()
	}
	if e.warn {
		ss.log.Warn("media stream ended abnormally", attrs...)
	} else {
		ss.log.Info("media stream ended", attrs...)
	}
	ss.s.m.ended.WithLabelValues(e.reason).Inc()
}

// loop reads messages until the stream ends and says how it ended.
func (ss *session) loop() end {
	cfg := &ss.s.cfg
	for {
		mt, data, err := ss.conn.ReadMessage(ss.buf)
		ss.buf = data[:0]
		if err != nil {
			return ss.readError(err)
		}
		if mt != ws.TextMessage {
			ss.reject(callrec.ErrKindBinaryFrame, "binary WebSocket frame: Twilio Media Streams send JSON text only")
			return end{reason: callrec.EndProtocolError, detail: "binary frames are not part of Twilio Media Streams",
				code: ws.CloseUnsupportedData, warn: true}
		}
		msg, err := ss.parser.Parse(data)
		if err != nil {
			var pe *message.Error
			kind := callrec.ErrKindMalformedJSON
			if errors.As(err, &pe) {
				kind = pe.Kind
			}
			if e, stop := ss.badMessage(kind, err.Error()); stop {
				return e
			}
			continue
		}
		if e, stop := ss.handle(msg); stop {
			return e
		}
		if ss.started() && time.Until(ss.deadline) < cfg.IdleTimeout-time.Second {
			ss.setDeadline(cfg.IdleTimeout)
			ss.flushCounters()
		}
	}
}

func (ss *session) handle(msg *message.Message) (end, bool) {
	switch msg.Event {
	case message.EventMedia:
		if !ss.started() {
			ss.reject(callrec.ErrKindMediaBeforeStart, "media message before start")
			return end{reason: callrec.EndProtocolError, detail: "media before start", code: ws.ClosePolicyViolation, warn: true}, true
		}
		if !bytes.Equal(msg.StreamSIDBytes, ss.streamSID) {
			return ss.badMessage(callrec.ErrKindWrongStream, fmt.Sprintf("media for stream %q on the socket of %s", msg.StreamSIDBytes, ss.streamSID))
		}
		ss.frame = callrec.Frame{Track: msg.Media.Track, Chunk: msg.Media.Chunk, TimestampMS: msg.Media.TimestampMS,
			TwilioSeq: msg.SequenceNumber, Payload: msg.Media.Payload}
		ss.nMedia++
		return ss.forward()
	case message.EventConnected:
		ss.connected = true
	case message.EventStart:
		if ss.started() {
			return ss.badMessage(callrec.ErrKindDuplicateStart, "second start message ignored: the stream already started as "+string(ss.streamSID))
		}
		ss.start(msg)
	case message.EventStop:
		if !ss.started() {
			ss.reject(callrec.ErrKindBadField, "stop before start")
			return end{reason: callrec.EndProtocolError, detail: "stop before start", code: ws.ClosePolicyViolation, warn: true}, true
		}
		ss.stopSeq = msg.SequenceNumber
		return end{reason: callrec.EndStop, code: ws.CloseNormal, detail: "stop received"}, true
	case message.EventMark, message.EventDTMF:
		// Only sent on bidirectional streams; nothing to record.
	default:
		return ss.badMessage(callrec.ErrKindUnknownEvent, fmt.Sprintf("unknown event %q ignored", msg.Name))
	}
	return end{}, false
}

// forward hands ss.frame to every replica still recording. A replica
// whose budget is exhausted drops it (an overflow gap in that recording
// only); one whose recording failed is left behind while another records.
// The stream ends only when no replica can record any more.
func (ss *session) forward() (end, bool) {
	var failed error
	recording := 0
	for _, r := range ss.reps {
		if r.failed {
			continue
		}
		if r.s.Frame(&ss.frame) {
			recording++
			if r.dropping {
				r.dropping = false
				ss.log.Warn("recorder caught up: frames flowing again", "replica", r.n)
			}
			continue
		}
		if err := r.s.Failed(); err != nil {
			r.failed, failed = true, err
			if len(ss.reps) > 1 {
				ss.s.m.replicaFailures.Inc()
				ss.log.Error("dual recording: one replica's recording failed; the other carries on alone",
					"replica", r.n, callrec.LogKeyINUM, r.s.INUM(), callrec.LogKeyErr, err)
			}
			continue
		}
		recording++
		ss.nDropped++
		if !r.dropping {
			r.dropping = true
			ss.log.Error("recorder not acknowledging: retention budget exceeded, dropping frames (recorded as a gap)",
				"replica", r.n, callrec.LogKeyTrack, ss.frame.Track.String(), "chunk", ss.frame.Chunk)
		}
	}
	if recording == 0 && failed != nil {
		// Nothing can record this stream any more: say so to Twilio (which
		// reports stream-error, so the stream can be restarted) rather than
		// swallow its audio.
		return end{reason: callrec.EndWriteError, detail: "recording failed: " + failed.Error(), code: ws.CloseInternalError, warn: true}, true
	}
	return end{}, false
}

func (ss *session) start(msg *message.Message) {
	info := msg.Start.Info()
	info.StartedAt = time.Now().UTC()
	info.Adapter = ss.s.cfg.NodeID
	info.Remote = ss.remote
	ss.streamSID = []byte(info.StreamSID)
	ss.log = ss.log.With(callrec.LogKeyStreamSID, info.StreamSID, callrec.LogKeyCallSID, info.CallSID)
	pair, pairErr := callrec.PairFromParams(info.CustomParameters)
	info.Pair = pair
	if ss.s.replicas != nil {
		for i, st := range ss.s.replicas.OpenReplicas(info, 2) {
			ss.reps = append(ss.reps, &replica{n: i + 1, s: st})
		}
		if len(ss.reps) < 2 {
			// Written once rather than parked: see ReplicaOpener and
			// placement.Placer.OpenReplicas.
			ss.s.m.dualSingle.Inc()
			ss.log.Warn("dual recording: no second recorder available; this stream is recorded by one recorder only")
		}
	} else {
		ss.reps = []*replica{{s: ss.s.rec.Open(info)}}
	}
	ss.setDeadline(ss.s.cfg.IdleTimeout)
	attrs := []any{"tracks", info.TrackNames, "protocol_connected", ss.connected, "replicas", len(ss.reps)}
	if pair != nil {
		attrs = append(attrs, "pair", pair.Group, "copy", pair.Copy, "copies", pair.Copies)
	}
	ss.log.Info("media stream started", attrs...)
	// After opening, so the recordings get the notes.
	if pairErr != nil {
		ss.reject(callrec.ErrKindBadField, "malformed dual-stream pair parameters, stream recorded unpaired: "+pairErr.Error())
	}
	if u := ss.urlPair; u != nil && pairErr == nil && (pair == nil || pair.Group != u.Group || pair.Copy != u.Copy) {
		ss.reject(callrec.ErrKindBadField, fmt.Sprintf("stream connected on the URL of pair %q copy %d, but its custom parameters say %s",
			u.Group, u.Copy, describePair(pair)))
	}
}

func describePair(p *callrec.StreamPair) string {
	if p == nil {
		return "no pair"
	}
	return fmt.Sprintf("pair %q copy %d", p.Group, p.Copy)
}

// badMessage counts a rejected message, tells the recording, and ends the
// stream once there have been too many.
func (ss *session) badMessage(kind, detail string) (end, bool) {
	ss.reject(kind, detail)
	ss.bad++
	if ss.bad >= ss.s.cfg.MaxBadMessages {
		return end{reason: callrec.EndProtocolError, code: ws.CloseInvalidPayload, warn: true,
			detail: fmt.Sprintf("%d bad messages, last: %s", ss.bad, kind)}, true
	}
	return end{}, false
}

// reject logs and counts one bad input, and notes it on the recording.
func (ss *session) reject(kind, detail string) {
	ss.s.m.badMessages.WithLabelValues(kind).Inc()
	if ss.bad < 10 {
		ss.log.Warn("bad Media Streams input", "kind", kind, "detail", detail)
	}
	for _, r := range ss.reps {
		r.s.Note(link.Note{StreamError: callrec.StreamError{At: time.Now().UTC(), Kind: kind, Detail: detail}})
	}
}

// readError maps a read failure to how the stream ended.
func (ss *session) readError(err error) end {
	var ne net.Error
	var ce *ws.CloseError
	switch {
	case errors.Is(err, ws.ErrMessageTooBig):
		detail := fmt.Sprintf("message exceeds %d bytes", ss.s.cfg.ReadLimit)
		ss.reject(callrec.ErrKindOversize, detail)
		return end{reason: callrec.EndProtocolError, detail: detail, code: ws.CloseMessageTooBig, warn: true}
	case errors.As(err, &ne) && ne.Timeout():
		if !ss.started() {
			return end{reason: callrec.EndTimeout, code: ws.ClosePolicyViolation, warn: true,
				detail: fmt.Sprintf("no start message within %v", ss.s.cfg.StartTimeout)}
		}
		return end{reason: callrec.EndTimeout, code: ws.ClosePolicyViolation, warn: true,
			detail: fmt.Sprintf("no message for %v", ss.s.cfg.IdleTimeout)}
	case errors.As(err, &ce):
		return end{reason: callrec.EndSocketClosed, warn: true,
			detail: fmt.Sprintf("Twilio closed the socket without stop (code %d %s)", ce.Code, ce.Text)}
	default:
		return end{reason: callrec.EndSocketClosed, warn: true, detail: "connection lost without stop: " + err.Error()}
	}
}

func (ss *session) setDeadline(d time.Duration) {
	ss.deadline = time.Now().Add(d)
	_ = ss.conn.SetReadDeadline(ss.deadline)
}

func (ss *session) flushCounters() {
	if ss.nMedia > 0 {
		ss.s.m.media.Add(float64(ss.nMedia))
		ss.nMedia = 0
	}
	if ss.nDropped > 0 {
		ss.s.m.dropped.Add(float64(ss.nDropped))
		ss.nDropped = 0
	}
}
