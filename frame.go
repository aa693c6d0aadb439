package callrec

import (
	"strconv"
	"time"
)

// Track is one direction of a call leg's audio.
type Track uint8

// The two tracks of a Twilio Media Stream. On the customer leg, inbound is
// the customer's voice (left channel) and outbound is what the customer
// hears: the agent side (right channel).
const (
	TrackInbound  Track = 0
	TrackOutbound Track = 1
	NumTracks           = 2
)

// String returns Twilio's name for the track.
func (t Track) String() string {
	switch t {
	case TrackInbound:
		return "inbound"
	case TrackOutbound:
		return "outbound"
	default:
		return "unknown"
	}
}

// ParseTrack maps Twilio's track name to a Track.
func ParseTrack(s string) (Track, bool) {
	switch s {
	case "inbound":
		return TrackInbound, true
	case "outbound":
		return TrackOutbound, true
	}
	return 0, false
}

// Audio format of every Twilio Media Stream and of our recordings.
const (
	SampleRate      = 8000 // Hz
	SamplesPerMS    = SampleRate / 1000
	MulawSilence    = 0xFF // μ-law code for +0
	MaxFramePayload = 8000 // bytes of μ-law in one media message we accept (1 s); Twilio sends 160
)

// Frame is one media message of one track, as forwarded from a media adapter
// to a recorder. Payload is raw μ-law (one byte per sample).
type Frame struct {
	Seq         uint64 // link sequence number assigned by the adapter, per stream, from 1
	Track       Track
	Chunk       uint32 // Twilio's per-track chunk counter, from 1
	TimestampMS uint32 // Twilio's presentation timestamp: ms since stream start
	TwilioSeq   uint64 // Twilio's sequenceNumber (counts every message after connected)
	Payload     []byte
}

// StreamInfo describes a Media Stream as announced by Twilio's start message,
// plus what the adapter knows about the connection.
type StreamInfo struct {
	StreamSID        string            `json:"stream_sid"`
	CallSID          string            `json:"call_sid"`
	AccountSID       string            `json:"account_sid"`
	Tracks           []Track           `json:"-"`
	TrackNames       []string          `json:"tracks"`
	CustomParameters map[string]string `json:"custom_parameters"`
	Encoding         string            `json:"encoding"`
	SampleRate       int               `json:"sample_rate"`
	Channels         int               `json:"channels"`
	StartedAt        time.Time         `json:"started_at"` // when the adapter received start
	Adapter          string            `json:"adapter"`    // node id of the media adapter
	Remote           string            `json:"remote"`     // remote address of Twilio's socket
	// Pair is set on a stream that is one of several Twilio streams of the
	// same call carrying the same audio (dual-stream capture): a recorder
	// merges the copies of a pair into one recording.
	Pair *StreamPair `json:"pair,omitempty"`
	// Replica is 1 or 2 when the adapter writes the stream to two recorders
	// at once (dual recording), 0 when it writes it to one.
	Replica int `json:"replica,omitempty"`
}

// Custom parameters the tracker sets on the streams of a dual-stream pair.
const (
	ParamPair   = "pair"   // the pair's group: the same on every copy
	ParamCopy   = "copy"   // which copy: "1", "2", …
	ParamCopies = "copies" // how many copies were started
)

// MaxCopies bounds the copies of a pair: Twilio allows four streams per call.
const MaxCopies = 4

// StreamPair identifies a stream as one copy of a dual-stream pair.
type StreamPair struct {
	Group  string `json:"group"`  // same for every copy (the tracker's stream name, without restart suffix)
	Copy   int    `json:"copy"`   // 1..Copies
	Copies int    `json:"copies"` // copies started (2 for dual streams)
}

// PairFromParams reads a stream's pair from its custom parameters: nil when
// the stream is not part of a pair, an error when the parameters are there
// but malformed.
func PairFromParams(p map[string]string) (*StreamPair, error) {
	g, ok := p[ParamPair]
	if !ok {
		return nil, nil
	}
	if g == "" || len(g) > 256 {
		return nil, Errorf(EINVALID, "custom parameter %s: want 1..256 characters, got %d", ParamPair, len(g))
	}
	c, err := strconv.Atoi(p[ParamCopy])
	if err != nil || c < 1 || c > MaxCopies {
		return nil, Errorf(EINVALID, "custom parameter %s=%q: want 1..%d", ParamCopy, p[ParamCopy], MaxCopies)
	}
	n, err := strconv.Atoi(p[ParamCopies])
	if err != nil || n < c || n > MaxCopies {
		return nil, Errorf(EINVALID, "custom parameter %s=%q: want %d..%d", ParamCopies, p[ParamCopies], c, MaxCopies)
	}
	return &StreamPair{Group: g, Copy: c, Copies: n}, nil
}

// HasTrack reports whether the stream carries track t.
func (s *StreamInfo) HasTrack(t Track) bool {
	for _, x := range s.Tracks {
		if x == t {
			return true
		}
	}
	return false
}
