package callrec

import "time"

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
