package eventadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"callrec"
)

// Sentinel errors of Decode and DecodeBatch; callers branch on them with
// errors.Is to count and skip events.
var (
	// ErrMalformed marks input that is not a usable CloudEvent: bad JSON, a
	// specversion other than "1.0", a missing id or type, or a payload
	// field of the wrong shape (task_attributes that is not JSON, a version
	// that is not a number…).
	ErrMalformed = errors.New("malformed event")
	// ErrNotTaskRouter marks a valid CloudEvent of another Twilio product.
	ErrNotTaskRouter = errors.New("not a TaskRouter event")
	// ErrUnknownType marks a TaskRouter event of a type callrec does not
	// know; Decode still returns what it could decode.
	ErrUnknownType = errors.New("unknown TaskRouter event type")
)

// TypePrefix is the CloudEvent type prefix of TaskRouter events.
const TypePrefix = "com.twilio.taskrouter."

// knownTypes are the TaskRouter event types of cti.go.
var knownTypes = map[callrec.CTIEventType]bool{
	callrec.EventReservationCreated:   true,
	callrec.EventReservationAccepted:  true,
	callrec.EventReservationRejected:  true,
	callrec.EventReservationTimeout:   true,
	callrec.EventReservationCanceled:  true,
	callrec.EventReservationRescinded: true,
	callrec.EventReservationFailed:    true,
	callrec.EventReservationWrapup:    true,
	callrec.EventReservationCompleted: true,
	callrec.EventTaskCreated:          true,
	callrec.EventTaskUpdated:          true,
	callrec.EventTaskCanceled:         true,
	callrec.EventTaskWrapup:           true,
	callrec.EventTaskCompleted:        true,
	callrec.EventTaskDeleted:          true,
	callrec.EventTaskSystemDeleted:    true,
	callrec.EventTransferInitiated:    true,
	callrec.EventTransferAttemptFail:  true,
	callrec.EventTransferCompleted:    true,
	callrec.EventTransferFailed:       true,
	callrec.EventTransferCanceled:     true,
}

// cloudEvent is the CloudEvents 1.0 envelope.
type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	Type        string          `json:"type"`
	Source      string          `json:"source"`
	ID          string          `json:"id"`
	Time        string          `json:"time"`
	Data        json.RawMessage `json:"data"`
}

// wdsData is the TaskRouter.WDSEvent wrapper in the CloudEvent's data.
type wdsData struct {
	AccountSID string          `json:"account_sid"`
	Timestamp  string          `json:"timestamp"`
	Payload    json.RawMessage `json:"payload"`
}

// wdsPayload holds the payload fields callrec uses (snake_case, present
// only when they apply).
type wdsPayload struct {
	AccountSID           string          `json:"account_sid"`
	Timestamp            string          `json:"timestamp"`
	WorkspaceSID         string          `json:"workspace_sid"`
	TaskSID              string          `json:"task_sid"`
	TaskVersion          lenientInt      `json:"task_version"`
	TaskAssignmentStatus string          `json:"task_assignment_status"`
	TaskChannel          string          `json:"task_channel_unique_name"`
	TaskQueueSID         string          `json:"task_queue_sid"`
	TaskQueueName        string          `json:"task_queue_name"`
	TaskCanceledReason   string          `json:"task_canceled_reason"`
	TaskCompletedReason  string          `json:"task_completed_reason"`
	TaskAttributes       json.RawMessage `json:"task_attributes"`
	ReservationSID       string          `json:"reservation_sid"`
	ReservationVersion   lenientInt      `json:"reservation_version"`
	WorkerSID            string          `json:"worker_sid"`
	WorkerName           string          `json:"worker_name"`
	WorkerAttributes     json.RawMessage `json:"worker_attributes"`

	TransferSID                   string `json:"task_transfer_sid"`
	TransferMode                  string `json:"transfer_mode"`
	TransferType                  string `json:"transfer_type"`
	TransferTo                    string `json:"transfer_to"`
	TransferStatus                string `json:"transfer_status"`
	TransferInitiatingWorker      string `json:"transfer_initiating_worker_sid"`
	TransferInitiatingReservation string `json:"transfer_initiating_reservation_sid"`
}

// Decode decodes one CloudEvent 1.0 (JSON) carrying a TaskRouter.WDSEvent
// into a CTIEvent. It does not set Received or Origin.
//
// Errors wrap ErrMalformed, ErrNotTaskRouter or ErrUnknownType. With
// ErrUnknownType the event is returned as far as it could be decoded;
// with the others it is the zero CTIEvent. Error texts never quote
// attribute values (they hold phone numbers).
func Decode(data []byte) (callrec.CTIEvent, error) {
	var ce cloudEvent
	if err := json.Unmarshal(data, &ce); err != nil {
		return callrec.CTIEvent{}, fmt.Errorf("%w: cloudevent: %w", ErrMalformed, err)
	}
	switch {
	case ce.SpecVersion != "1.0":
		return callrec.CTIEvent{}, fmt.Errorf("%w: specversion %q, want 1.0", ErrMalformed, truncate(ce.SpecVersion))
	case ce.ID == "":
		return callrec.CTIEvent{}, fmt.Errorf("%w: no id", ErrMalformed)
	case ce.Type == "":
		return callrec.CTIEvent{}, fmt.Errorf("%w: event %s: no type", ErrMalformed, truncate(ce.ID))
	case !strings.HasPrefix(ce.Type, TypePrefix):
		return callrec.CTIEvent{}, fmt.Errorf("%w: event %s: type %q", ErrNotTaskRouter, truncate(ce.ID), truncate(ce.Type))
	}
	ev := callrec.CTIEvent{
		ID:     ce.ID,
		Type:   callrec.CTIEventType(strings.TrimPrefix(ce.Type, TypePrefix)),
		Source: ce.Source,
	}
	err := decodeData(&ev, ce)
	if !knownTypes[ev.Type] {
		if err != nil {
			return ev, fmt.Errorf("%w %q: event %s: %w", ErrUnknownType, truncate(string(ev.Type)), truncate(ev.ID), err)
		}
		return ev, fmt.Errorf("%w %q: event %s", ErrUnknownType, truncate(string(ev.Type)), truncate(ev.ID))
	}
	if err != nil {
		return callrec.CTIEvent{}, fmt.Errorf("event %s (%s): %w", truncate(ev.ID), ev.Type, err)
	}
	return ev, nil
}

// DecodeBatch splits a webhook sink body, a JSON array of CloudEvents,
// into its events without decoding them. A single JSON object is accepted
// as a batch of one. Malformed JSON gives an error wrapping ErrMalformed.
func DecodeBatch(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	switch firstByte(trimmed) {
	case '[':
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return nil, fmt.Errorf("%w: batch: %w", ErrMalformed, err)
		}
		return batch, nil
	case '{':
		if !json.Valid(trimmed) {
			return nil, fmt.Errorf("%w: batch: invalid JSON object", ErrMalformed)
		}
		return []json.RawMessage{json.RawMessage(trimmed)}, nil
	default:
		return nil, fmt.Errorf("%w: batch: not a JSON array or object", ErrMalformed)
	}
}

// decodeData fills ev from the CloudEvent's data. Errors wrap ErrMalformed.
func decodeData(ev *callrec.CTIEvent, ce cloudEvent) error {
	var d wdsData
	if !isObject(ce.Data) {
		return fmt.Errorf("%w: data is not an object", ErrMalformed)
	}
	if err := json.Unmarshal(ce.Data, &d); err != nil {
		return fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	if !isObject(d.Payload) {
		return fmt.Errorf("%w: data.payload is not an object", ErrMalformed)
	}
	p := wdsPayload{TaskVersion: absent, ReservationVersion: absent}
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return fmt.Errorf("%w: data.payload: %w", ErrMalformed, err)
	}
	t, err := firstTime(p.Timestamp, d.Timestamp, ce.Time)
	if err != nil {
		return err
	}
	ev.Time = t
	ev.AccountSID = firstNonEmpty(p.AccountSID, d.AccountSID)
	ev.WorkspaceSID = p.WorkspaceSID
	ev.TaskSID = p.TaskSID
	ev.TaskVersion = int64(p.TaskVersion)
	ev.TaskAssignmentStatus = p.TaskAssignmentStatus
	ev.TaskChannel = p.TaskChannel
	ev.TaskQueueSID = p.TaskQueueSID
	ev.TaskQueueName = p.TaskQueueName
	ev.TaskReason = firstNonEmpty(p.TaskCanceledReason, p.TaskCompletedReason)
	ev.ReservationSID = p.ReservationSID
	ev.ReservationVersion = int64(p.ReservationVersion)
	ev.WorkerSID = p.WorkerSID
	ev.WorkerName = p.WorkerName
	if p.TransferSID != "" {
		ev.Transfer = &callrec.Transfer{
			SID:                      p.TransferSID,
			Mode:                     p.TransferMode,
			Type:                     p.TransferType,
			To:                       p.TransferTo,
			Status:                   p.TransferStatus,
			InitiatingWorkerSID:      p.TransferInitiatingWorker,
			InitiatingReservationSID: p.TransferInitiatingReservation,
		}
	}
	taskRaw, err := parseAttributes("task_attributes", p.TaskAttributes)
	if err != nil {
		return err
	}
	ev.Task = taskAttributes(taskRaw)
	workerRaw, err := parseAttributes("worker_attributes", p.WorkerAttributes)
	if err != nil {
		return err
	}
	ev.Worker = workerAttributes(workerRaw)
	return nil
}

// parseAttributes parses attributes sent as a JSON string holding a JSON
// object (as Twilio does) or, leniently, as a JSON object. Absent, null
// and "" give nil. Errors wrap ErrMalformed and do not quote the value.
func parseAttributes(name string, raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	doc := []byte(raw)
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
		}
		doc = bytes.TrimSpace([]byte(s))
		if len(doc) == 0 {
			return nil, nil
		}
	}
	if !isObject(doc) {
		return nil, fmt.Errorf("%w: %s is not a JSON object", ErrMalformed, name)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, name, err)
	}
	return m, nil
}

// taskAttributes picks the voice task attributes out of raw.
func taskAttributes(raw map[string]any) callrec.TaskAttributes {
	a := callrec.TaskAttributes{
		CallSID:   stringOf(raw, "call_sid"),
		From:      stringOf(raw, "from"),
		To:        stringOf(raw, "to"),
		Direction: stringOf(raw, "direction"),
		Raw:       raw,
	}
	if conf, ok := raw["conference"].(map[string]any); ok {
		c := &callrec.Conference{SID: stringOf(conf, "sid")}
		if parts, ok := conf["participants"].(map[string]any); ok {
			for label, v := range parts {
				if sid, ok := v.(string); ok {
					if c.Participants == nil {
						c.Participants = make(map[string]string, len(parts))
					}
					c.Participants[label] = sid
				}
			}
		}
		a.Conference = c
	}
	return a
}

// workerAttributes picks the Flex worker attributes out of raw.
func workerAttributes(raw map[string]any) callrec.WorkerAttributes {
	a := callrec.WorkerAttributes{
		Email:      stringOf(raw, "email"),
		FullName:   stringOf(raw, "full_name"),
		ContactURI: stringOf(raw, "contact_uri"),
		Raw:        raw,
	}
	if roles, ok := raw["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				a.Roles = append(a.Roles, s)
			}
		}
	}
	return a
}

// absent is the value of a version the event does not carry.
const absent lenientInt = -1

// lenientInt decodes an integer sent as a JSON number (8, 8.0) or string
// ("8"). null and "" leave the value unchanged.
type lenientInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *lenientInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = lenientInt(i)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("not an integer: %q", truncate(s))
	}
	*n = lenientInt(f)
	return nil
}

// firstTime parses the first non-empty RFC 3339 timestamp. No timestamp at
// all gives the zero time; an unparsable one is an error.
func firstTime(candidates ...string) (time.Time, error) {
	s := firstNonEmpty(candidates...)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: timestamp %q: not RFC 3339", ErrMalformed, truncate(s))
	}
	return t.UTC(), nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func stringOf(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func isObject(b []byte) bool { return firstByte(bytes.TrimSpace(b)) == '{' }

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// truncate bounds untrusted text quoted in errors and logs.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
