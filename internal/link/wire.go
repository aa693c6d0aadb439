// Package link is the protocol between media adapters and recorders.
//
// One persistent connection per adapter–recorder pair multiplexes every
// stream the adapter sends to that recorder. Each stream's records (audio
// frames, notes, the close) carry a sequence number assigned by the adapter;
// the recorder answers with cumulative acknowledgements, sent only once the
// records up to that number are written (and synced) to disk. The adapter
// keeps every record until it is acknowledged, and replays what is
// unacknowledged when the connection comes back.
//
// Wire format: every message is a 4-byte big-endian length (of what
// follows), a 1-byte type, and a body. Integers in bodies are unsigned
// varints unless noted. Records are encoded once, by the adapter's read loop,
// into the stream's retention buffer, and copied verbatim into RECORDS
// messages, so resending costs a copy, not a re-encode.
//
// The same protocol runs over TCP between processes and over an in-process
// pipe in `callrec run`.
package link

import (
	"encoding/binary"
	"errors"
	"fmt"

	"callrec"
)

// Version is the protocol version spoken in HELLO/WELCOME.
const Version = 1

// Message types.
const (
	msgHello   = 1 // a→r: version u8, adapter id (string)
	msgWelcome = 2 // r→a: version u8, node id u16 (BE)
	msgOpen    = 3 // a→r: stream u32 (BE), JSON OpenRequest
	msgOpened  = 4 // r→a: stream u32, JSON OpenReply
	msgRecords = 5 // a→r: stream u32, records…
	msgAck     = 6 // r→a: (stream u32, seq varint)…
	msgClosed  = 7 // r→a: stream u32, JSON CloseReply
	msgFailed  = 8 // r→a: stream u32, error text
)

// Record kinds inside a RECORDS message.
const (
	recFrame = 'F' // seq, track u8, chunk, timestamp, twilio seq, len, payload
	recNote  = 'N' // seq, len, JSON Note
	recClose = 'C' // seq, len, JSON Close
)

// MaxMessage bounds one message on the wire.
const MaxMessage = 4 << 20

// ErrProtocol reports a malformed message from the peer.
var ErrProtocol = errors.New("link: protocol error")

// OpenRequest asks a recorder to record a stream.
type OpenRequest struct {
	Info callrec.StreamInfo `json:"info"`
	// Resume is set when the adapter re-opens a stream after the connection
	// dropped: the recorder continues the same recording if it still has it.
	Resume *Resume `json:"resume,omitempty"`
}

// Resume describes what the recorder already acknowledged of a stream.
type Resume struct {
	INUM     callrec.INUM `json:"inum"`
	AckedSeq uint64       `json:"acked_seq"`
}

// OpenReply is the recorder's answer to OpenRequest.
type OpenReply struct {
	INUM callrec.INUM `json:"inum"`
	// LastSeq is the highest record sequence the recorder already holds for
	// this stream (non-zero only on resume); the adapter may skip those.
	LastSeq uint64 `json:"last_seq"`
	Resumed bool   `json:"resumed"`
}

// Note is an observation about a stream the recorder should keep with the
// recording: bad input seen by the adapter, or frames it dropped.
type Note struct {
	callrec.StreamError
	Track     string `json:"track,omitempty"`
	FromChunk uint32 `json:"from_chunk,omitempty"`
	ToChunk   uint32 `json:"to_chunk,omitempty"`
	Frames    int64  `json:"frames,omitempty"`
}

// Close ends a stream.
type Close struct {
	Reason  string `json:"reason"` // callrec.End*
	Detail  string `json:"detail,omitempty"`
	StopSeq uint64 `json:"stop_seq,omitempty"` // Twilio's sequenceNumber of stop
}

// CloseReply reports the finished recording.
type CloseReply struct {
	INUM  callrec.INUM           `json:"inum"`
	State callrec.RecordingState `json:"state"`
	Seq   uint64                 `json:"seq"`
}

// appendFrame encodes a frame record.
func appendFrame(b []byte, f *callrec.Frame) []byte {
	b = append(b, recFrame)
	b = binary.AppendUvarint(b, f.Seq)
	b = append(b, byte(f.Track))
	b = binary.AppendUvarint(b, uint64(f.Chunk))
	b = binary.AppendUvarint(b, uint64(f.TimestampMS))
	b = binary.AppendUvarint(b, f.TwilioSeq)
	b = binary.AppendUvarint(b, uint64(len(f.Payload)))
	return append(b, f.Payload...)
}

// appendBlob encodes a note or close record.
func appendBlob(b []byte, kind byte, seq uint64, body []byte) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// record is one decoded record; Payload and Body alias the message buffer.
type record struct {
	Kind  byte
	Frame callrec.Frame
	Body  []byte
}

// decodeRecord decodes the record at the start of b and returns the rest.
func decodeRecord(b []byte, r *record) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty record", ErrProtocol)
	}
	r.Kind = b[0]
	b = b[1:]
	seq, b, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case recFrame:
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: short frame", ErrProtocol)
		}
		f := &r.Frame
		f.Seq, f.Track = seq, callrec.Track(b[0])
		if f.Track >= callrec.NumTracks {
			return nil, fmt.Errorf("%w: track %d", ErrProtocol, b[0])
		}
		var chunk, ts, n uint64
		if chunk, b, err = uvarint(b[1:]); err != nil {
			return nil, err
		}
		if ts, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if f.TwilioSeq, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if n, b, err = uvarint(b); err != nil {
			return nil, err
		}
		if chunk > 1<<32-1 || ts > 1<<32-1 || n > uint64(len(b)) || n > callrec.MaxFramePayload {
			return nil, fmt.Errorf("%w: frame fields out of range", ErrProtocol)
		}
		f.Chunk, f.TimestampMS, f.Payload = uint32(chunk), uint32(ts), b[:n]
		return b[n:], nil
	case recNote, recClose:
		n, b, err := uvarint(b)
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: short record body", ErrProtocol)
		}
		r.Frame.Seq, r.Body = seq, b[:n]
		return b[n:], nil
	default:
		return nil, fmt.Errorf("%w: record kind %d", ErrProtocol, r.Kind)
	}
}

// recordHeader decodes just the kind, seq and (for frames) track, chunk and
// timestamp of the record at the start of b, and its total length.
func recordHeader(b []byte) (kind byte, seq uint64, f callrec.Frame, size int, err error) {
	var r record
	rest, err := decodeRecord(b, &r)
	if err != nil {
		return 0, 0, f, 0, err
	}
	return r.Kind, r.Frame.Seq, r.Frame, len(b) - len(rest), nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrProtocol)
	}
	return v, b[n:], nil
}

// beginMessage appends a message header with a placeholder length and
// returns the buffer and the header's offset; finishMessage fills the length.
func beginMessage(b []byte, typ byte) ([]byte, int) {
	off := len(b)
	b = append(b, 0, 0, 0, 0, typ)
	return b, off
}

func finishMessage(b []byte, off int) []byte {
	binary.BigEndian.PutUint32(b[off:], uint32(len(b)-off-4))
	return b
}

func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	n, b, err := uvarint(b)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(b)) {
		return "", nil, fmt.Errorf("%w: short string", ErrProtocol)
	}
	return string(b[:n]), b[n:], nil
}
