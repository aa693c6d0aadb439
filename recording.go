package callrec

import (
	"context"
	"time"
)

// RecordingState is the life-cycle state of a recording in a recorder's index.
type RecordingState string

// Recording states.
const (
	// StateRecording: audio is being written.
	StateRecording RecordingState = "recording"
	// StateComplete: the stream ended with Twilio's stop message and every
	// received frame is on disk.
	StateComplete RecordingState = "complete"
	// StateInterrupted: the recording ended any other way (socket cut,
	// protocol error, recorder crash or shutdown). The audio up to the last
	// sync is on disk and playable; EndReason says why.
	StateInterrupted RecordingState = "interrupted"
)

// End reasons recorded with a finished recording.
const (
	EndStop          = "stop"           // Twilio sent stop
	EndSocketClosed  = "socket_closed"  // Twilio's socket closed without stop
	EndProtocolError = "protocol_error" // the adapter closed the socket on bad input
	EndTimeout       = "timeout"        // no message within the idle timeout
	EndShutdown      = "shutdown"       // our process shut down mid-call
	EndCrash         = "crash"          // found open after a restart (kill -9, power loss)
	EndWriteError    = "write_error"    // the recorder could not write the audio
	EndLinkLost      = "link_lost"      // the adapter never came back for the stream
)

// Recording is one INUM: one stream written by one recorder to one stereo
// WAV file, with its metadata and frame accounting.
type Recording struct {
	INUM        INUM           `json:"inum"`
	Node        uint16         `json:"node"`
	State       RecordingState `json:"state"`
	EndReason   string         `json:"end_reason,omitempty"`
	EndDetail   string         `json:"end_detail,omitempty"`
	Stream      StreamInfo     `json:"stream"`
	StartedAt   time.Time      `json:"started_at"`
	StoppedAt   time.Time      `json:"stopped_at,omitzero"`
	Audio       AudioInfo      `json:"audio"`
	Accounting  Accounting     `json:"accounting"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Interrupted *Interruption  `json:"interruption,omitempty"`
	// PreviousINUM links a recording that continues a stream another INUM
	// started (the adapter came back after the recorder lost the stream).
	PreviousINUM INUM `json:"previous_inum,omitempty"`
}

// Interruption records how a crashed recording was repaired on restart.
type Interruption struct {
	RepairedAt     time.Time `json:"repaired_at"`
	HeaderBytes    int64     `json:"header_data_bytes"` // data size the header claimed before repair
	RecoveredBytes int64     `json:"recovered_data_bytes"`
	TruncatedBytes int64     `json:"truncated_bytes"` // a torn trailing sample frame
}

// AudioInfo says where and how a recording's audio is stored. The index
// keeps only this reference: how the bytes are stored (plain file today,
// encrypted chunks later) is the blob store's business.
type AudioInfo struct {
	Ref        string `json:"ref"`    // blob reference, relative to the node's data dir
	Format     string `json:"format"` // "wav/mulaw-stereo"
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	DataBytes  int64  `json:"data_bytes"`
	DurationMS int64  `json:"duration_ms"`
	// OffsetMS is the stream time (ms since the stream started) of the
	// file's first sample: non-zero for a segment continuing another INUM.
	OffsetMS int64  `json:"offset_ms,omitempty"`
	SHA256   string `json:"sha256,omitempty"` // hex digest of the whole file, set when finished
}

// Accounting is a recording's frame accounting: what was expected, what
// arrived, and where the gaps are.
type Accounting struct {
	Tracks []TrackAccounting `json:"tracks"`
	// Messages counts Twilio messages by sequenceNumber across all tracks.
	Messages MessageAccounting `json:"messages"`
	// Errors lists the first bad inputs seen on the stream; ErrorCounts
	// counts every one by kind.
	Errors      []StreamError  `json:"errors,omitempty"`
	ErrorCounts map[string]int `json:"error_counts,omitempty"`
	// Patched counts frames that arrived after their place had been written
	// and were written into the file in place.
	Patched int64 `json:"patched"`
	// Copies lists the streams merged into a dual-stream recording, in the
	// order they joined; empty for a recording of one stream.
	Copies []CopyAccounting `json:"copies,omitempty"`
}

// Alignments of a copy in a merged recording.
const (
	AlignOrigin  = "origin"  // the first copy: its stream time is the recording's
	AlignContent = "content" // placed where its audio matched the audio already recorded
	AlignClock   = "clock"   // placed by the adapters' clocks (no unique audio match was found)
)

// CopyAccounting is what one stream of a dual-stream pair brought to the
// merged recording. Frames count both tracks.
type CopyAccounting struct {
	Copy        int       `json:"copy"`
	StreamSID   string    `json:"stream_sid"`
	Adapter     string    `json:"adapter"`
	Alignment   string    `json:"alignment"`
	OffsetMS    int64     `json:"offset_ms"`    // the copy's stream time 0 on the recording's timeline
	Received    int64     `json:"received"`     // frames received (duplicates included)
	Supplied    int64     `json:"supplied"`     // frames written from this copy (it brought them first)
	Redundant   int64     `json:"redundant"`    // frames another copy had already brought
	BeforeStart int64     `json:"before_start"` // frames before the recording's first sample (not written)
	JoinedAt    time.Time `json:"joined_at"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	EndReason   string    `json:"end_reason,omitempty"`
	// RestartOf is the stream SID this copy replaces (the tracker restarted
	// a copy that failed), from its custom parameter restart_of.
	RestartOf string `json:"restart_of,omitempty"`
}

// SupplyRun says which copy supplied a run of a track's chunks in a merged
// recording (chunks on the recording's timeline).
type SupplyRun struct {
	Copy      int    `json:"copy"`
	FromChunk uint32 `json:"from_chunk"`
	ToChunk   uint32 `json:"to_chunk"`
}

// TrackAccounting is the frame accounting of one track.
type TrackAccounting struct {
	Track      string `json:"track"`
	Expected   int64  `json:"expected"`      // from chunk numbers: 1..last chunk seen
	Received   int64  `json:"received"`      // distinct chunks written
	Duplicates int64  `json:"duplicates"`    // dropped repeats of a chunk already written
	OutOfOrder int64  `json:"out_of_order"`  // arrived after a higher chunk
	Missing    int64  `json:"missing"`       // Expected - Received
	FirstChunk uint32 `json:"first_chunk"`   // lowest chunk received
	LastChunk  uint32 `json:"last_chunk"`    // highest chunk received
	Samples    int64  `json:"samples"`       // samples of audio received
	Gaps       []Gap  `json:"gaps"`          // in time order
	GapsOmit   int64  `json:"gaps_omitted"`  // gaps beyond the listed ones
	Overflow   int64  `json:"overflow_drop"` // frames the adapter dropped to protect Twilio's socket
	// Supply says which copy supplied which chunks (merged recordings only);
	// SupplyOmit counts runs beyond the listed ones.
	Supply     []SupplyRun `json:"supply,omitempty"`
	SupplyOmit int64       `json:"supply_omitted,omitempty"`
}

// GapCause says why a stretch of a track is silence.
type GapCause string

// Gap causes.
const (
	GapMissing  GapCause = "missing"  // chunks never reached us
	GapTiming   GapCause = "timing"   // consecutive chunks, but the timestamps jump
	GapOverflow GapCause = "overflow" // the adapter dropped frames when a budget was exceeded
)

// Gap is a stretch of one track with no audio, in stream time.
type Gap struct {
	Cause     GapCause `json:"cause"`
	FromChunk uint32   `json:"from_chunk,omitempty"` // first missing chunk (0 for timing gaps)
	ToChunk   uint32   `json:"to_chunk,omitempty"`   // last missing chunk
	Frames    int64    `json:"frames"`               // missing frames (0 for timing gaps)
	StartMS   int64    `json:"start_ms"`             // ms since stream start
	EndMS     int64    `json:"end_ms"`
}

// MessageAccounting counts Twilio messages by their sequenceNumber.
type MessageAccounting struct {
	StopSeq    uint64 `json:"stop_sequence,omitempty"` // sequenceNumber of stop, when received
	MediaSent  int64  `json:"media_sent,omitempty"`    // media messages Twilio says it sent (from StopSeq)
	MediaSeen  int64  `json:"media_seen"`              // distinct media messages received
	TailMissed int64  `json:"tail_missing"`            // frames lost after each track's last chunk (from StopSeq)
}

// StreamError is one bad input observed on a stream.
type StreamError struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// Kinds of bad input on a Media Stream.
const (
	ErrKindMalformedJSON    = "malformed_json"
	ErrKindBadPayload       = "bad_payload"
	ErrKindBadField         = "bad_field"
	ErrKindUnknownEvent     = "unknown_event"
	ErrKindDuplicateStart   = "duplicate_start"
	ErrKindWrongStream      = "wrong_stream"
	ErrKindBinaryFrame      = "binary_frame"
	ErrKindOversize         = "oversize"
	ErrKindMediaBeforeStart = "media_before_start"
	ErrKindAfterStop        = "after_stop"
	ErrKindOverflow         = "overflow"
)

// RecordingFilter selects recordings from an index.
type RecordingFilter struct {
	CallSID   string
	StreamSID string
	From, To  time.Time // on StartedAt; zero means unbounded
	State     RecordingState
	Limit     int
	Offset    int
}

// RecordingEventType is STARTED or STOPPED.
type RecordingEventType string

// Recording events a recorder emits.
const (
	RecordingStarted RecordingEventType = "STARTED"
	RecordingStopped RecordingEventType = "STOPPED"
)

// RecordingEvent is a STARTED or STOPPED notification.
type RecordingEvent struct {
	Type      RecordingEventType `json:"type"`
	At        time.Time          `json:"at"`
	Recording Recording          `json:"recording"`
}

// RecordingNotifier receives a recorder's STARTED and STOPPED events.
// Consolidation implements it; until then a JSON log line does. Delivery is
// at least once: implementations must be idempotent on (Type, INUM).
type RecordingNotifier interface {
	NotifyRecording(ctx context.Context, ev RecordingEvent) error
}
