package message

import (
	"maps"
	"slices"

	"callrec"
)

// Event is the type of a Twilio Media Streams message, from its "event"
// field. The zero value is EventUnknown.
type Event uint8

// The event types of Twilio Media Streams. EventMark and EventDTMF are only
// sent on bidirectional streams; EventUnknown stands for any other event
// name, which Parse reports without failing.
const (
	EventUnknown Event = iota
	EventConnected
	EventStart
	EventMedia
	EventStop
	EventMark
	EventDTMF
)

// Event names as Twilio sends them.
const (
	nameConnected = "connected"
	nameStart     = "start"
	nameMedia     = "media"
	nameStop      = "stop"
	nameMark      = "mark"
	nameDTMF      = "dtmf"
)

// String returns Twilio's name of the event, or "unknown" for EventUnknown
// and out-of-range values.
func (e Event) String() string {
	switch e {
	case EventConnected:
		return nameConnected
	case EventStart:
		return nameStart
	case EventMedia:
		return nameMedia
	case EventStop:
		return nameStop
	case EventMark:
		return nameMark
	case EventDTMF:
		return nameDTMF
	default:
		return "unknown"
	}
}

// Message is one decoded Twilio Media Streams message. A Message returned by
// Parser.Parse is owned by the Parser and overwritten by its next Parse; the
// Start, Stop and Connected values it points to are allocated afresh for each
// message and may be kept.
type Message struct {
	// Event is the message type.
	Event Event
	// Name is the event name as sent; for known events it is a constant
	// string, so setting it never allocates.
	Name string
	// HasSeq reports whether the message carried a valid sequenceNumber.
	// It is always true for start, media and stop, which require one.
	HasSeq bool
	// SequenceNumber is Twilio's sequenceNumber: it counts every message
	// of the stream after connected, from 1.
	SequenceNumber uint64
	// StreamSID is the top-level streamSid. It is left empty for media
	// messages, so that the hot path does not allocate: compare
	// StreamSIDBytes instead.
	StreamSID string
	// StreamSIDBytes is the top-level streamSid for every event that has
	// one. It aliases parser storage and is valid until the next Parse.
	StreamSIDBytes []byte
	// Media is the audio of an EventMedia message.
	Media Media
	// Start is the body of an EventStart message, nil otherwise.
	Start *Start
	// Stop is the body of an EventStop message, nil otherwise.
	Stop *Stop
	// Connected is the body of an EventConnected message, nil otherwise.
	Connected *Connected
}

// Media is the body of a media message: one frame of one track.
type Media struct {
	// Track is the direction of the audio.
	Track callrec.Track
	// Chunk is Twilio's per-track chunk counter, from 1.
	Chunk uint32
	// TimestampMS is the presentation time in ms since the stream started.
	TimestampMS uint32
	// Payload is the decoded μ-law audio, one byte per sample, between 1
	// and callrec.MaxFramePayload bytes long. It aliases parser storage
	// and is valid until the next Parse: copy it to keep it.
	Payload []byte
}

// Start is the body of a start message: the stream's metadata.
type Start struct {
	// StreamSID identifies the Media Stream (MZ…).
	StreamSID string
	// CallSID identifies the call whose audio is streamed (CA…).
	CallSID string
	// AccountSID identifies the Twilio account (AC…).
	AccountSID string
	// Tracks lists the tracks the stream carries, in the order sent.
	Tracks []callrec.Track
	// TrackNames lists the track names as sent, parallel to Tracks.
	TrackNames []string
	// CustomParameters holds the <Parameter> values of the <Stream> TwiML;
	// it is never nil.
	CustomParameters map[string]string
	// Encoding is the media format's encoding, always "audio/x-mulaw".
	Encoding string
	// SampleRate is the media format's sample rate, always 8000.
	SampleRate int
	// Channels is the media format's channel count, always 1.
	Channels int
}

// Info returns the stream metadata of s as a callrec.StreamInfo. The
// adapter-specific fields (StartedAt, Adapter, Remote) are left zero. The
// slices and map are copies, and CustomParameters is never nil.
func (s *Start) Info() callrec.StreamInfo {
	params := maps.Clone(s.CustomParameters)
	if params == nil {
		params = map[string]string{}
	}
	return callrec.StreamInfo{
		StreamSID:        s.StreamSID,
		CallSID:          s.CallSID,
		AccountSID:       s.AccountSID,
		Tracks:           slices.Clone(s.Tracks),
		TrackNames:       slices.Clone(s.TrackNames),
		CustomParameters: params,
		Encoding:         s.Encoding,
		SampleRate:       s.SampleRate,
		Channels:         s.Channels,
	}
}

// Stop is the body of a stop message.
type Stop struct {
	// AccountSID identifies the Twilio account, when sent.
	AccountSID string
	// CallSID identifies the call, when sent.
	CallSID string
}

// Connected is the body of the connected message, the first message of
// every stream.
type Connected struct {
	// Protocol is the protocol name Twilio announces ("Call").
	Protocol string
	// Version is the protocol version Twilio announces ("1.0.0").
	Version string
}

// Error is a message Parse rejected. Kind is one of callrec.ErrKindMalformedJSON,
// callrec.ErrKindBadField, callrec.ErrKindBadPayload and
// callrec.ErrKindOversize; Msg says what was wrong and where.
type Error struct {
	Kind string
	Msg  string
}

// Error returns "twilio message: <kind>: <msg>".
func (e *Error) Error() string {
	return "twilio message: " + e.Kind + ": " + e.Msg
}
