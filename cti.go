package callrec

import (
	"context"
	"time"
)

// CTIEventType is a normalized TaskRouter event type: the part of the
// CloudEvent type after "com.twilio.taskrouter.", e.g. "reservation.accepted".
type CTIEventType string

// The TaskRouter events the tracker acts on. Others are decoded with their
// type as sent and counted.
const (
	EventReservationCreated   CTIEventType = "reservation.created"
	EventReservationAccepted  CTIEventType = "reservation.accepted"
	EventReservationRejected  CTIEventType = "reservation.rejected"
	EventReservationTimeout   CTIEventType = "reservation.timeout"
	EventReservationCanceled  CTIEventType = "reservation.canceled"
	EventReservationRescinded CTIEventType = "reservation.rescinded"
	EventReservationFailed    CTIEventType = "reservation.failed"
	EventReservationWrapup    CTIEventType = "reservation.wrapup"
	EventReservationCompleted CTIEventType = "reservation.completed"
	EventTaskCreated          CTIEventType = "task.created"
	EventTaskUpdated          CTIEventType = "task.updated"
	EventTaskCanceled         CTIEventType = "task.canceled"
	EventTaskWrapup           CTIEventType = "task.wrapup"
	EventTaskCompleted        CTIEventType = "task.completed"
	EventTaskDeleted          CTIEventType = "task.deleted"
	EventTaskSystemDeleted    CTIEventType = "task.system-deleted"
	EventTransferInitiated    CTIEventType = "task.transfer-initiated"
	EventTransferAttemptFail  CTIEventType = "task.transfer-attempt-failed"
	EventTransferCompleted    CTIEventType = "task.transfer-completed"
	EventTransferFailed       CTIEventType = "task.transfer-failed"
	EventTransferCanceled     CTIEventType = "task.transfer-canceled"
)

// CTIEvent is one TaskRouter event from Twilio Event Streams, decoded from
// its CloudEvent (TaskRouter.WDSEvent schema), with the JSON-string
// attributes parsed. Versions are -1 when the event does not carry them.
type CTIEvent struct {
	ID       string       `json:"id"`   // CloudEvent id: the deduplication key
	Type     CTIEventType `json:"type"` // from the CloudEvent type
	Time     time.Time    `json:"time"` // data.payload.timestamp (CloudEvent time if absent)
	Source   string       `json:"source,omitempty"`
	Received time.Time    `json:"received"` // when we read it (Kinesis arrival or webhook)
	Origin   string       `json:"origin,omitempty"`

	AccountSID   string `json:"account_sid"`
	WorkspaceSID string `json:"workspace_sid,omitempty"`

	TaskSID              string         `json:"task_sid,omitempty"`
	TaskVersion          int64          `json:"task_version"`
	TaskAssignmentStatus string         `json:"task_assignment_status,omitempty"`
	TaskChannel          string         `json:"task_channel,omitempty"` // "voice"
	TaskQueueSID         string         `json:"task_queue_sid,omitempty"`
	TaskQueueName        string         `json:"task_queue_name,omitempty"`
	TaskReason           string         `json:"task_reason,omitempty"` // canceled/completed reason
	Task                 TaskAttributes `json:"task_attributes"`

	ReservationSID     string `json:"reservation_sid,omitempty"`
	ReservationVersion int64  `json:"reservation_version"`

	WorkerSID  string           `json:"worker_sid,omitempty"`
	WorkerName string           `json:"worker_name,omitempty"` // the Flex identity
	Worker     WorkerAttributes `json:"worker_attributes"`

	Transfer *Transfer `json:"transfer,omitempty"`
}

// AgentExtension is how recordings are matched to agents: the Flex login
// (worker name, usually an email), or the worker's email attribute.
func (e *CTIEvent) AgentExtension() string {
	if e.WorkerName != "" {
		return e.WorkerName
	}
	return e.Worker.Email
}

// TaskAttributes are the voice task attributes a recorder needs (Flex sends
// them as a JSON string). Raw keeps everything for rules and display.
type TaskAttributes struct {
	CallSID    string         `json:"call_sid,omitempty"` // the customer's call leg
	From       string         `json:"from,omitempty"`
	To         string         `json:"to,omitempty"`
	Direction  string         `json:"direction,omitempty"` // inbound / outbound
	Conference *Conference    `json:"conference,omitempty"`
	Raw        map[string]any `json:"raw,omitempty"`
}

// Conference is the Flex conference of a task, once task.updated brings it.
type Conference struct {
	SID          string            `json:"sid,omitempty"`
	Participants map[string]string `json:"participants,omitempty"` // label → call SID ("customer", "worker", …)
}

// CustomerCallSID returns the customer's call leg: call_sid, or the
// conference's customer participant.
func (a *TaskAttributes) CustomerCallSID() string {
	if a.CallSID != "" {
		return a.CallSID
	}
	if a.Conference != nil {
		return a.Conference.Participants["customer"]
	}
	return ""
}

// WorkerAttributes are the Flex worker attributes (a JSON string in events).
type WorkerAttributes struct {
	Email      string         `json:"email,omitempty"`
	FullName   string         `json:"full_name,omitempty"`
	Roles      []string       `json:"roles,omitempty"`
	ContactURI string         `json:"contact_uri,omitempty"`
	Raw        map[string]any `json:"raw,omitempty"`
}

// Transfer describes a TaskRouter task transfer.
type Transfer struct {
	SID                      string `json:"sid,omitempty"`
	Mode                     string `json:"mode,omitempty"` // WARM / COLD
	Type                     string `json:"type,omitempty"` // WORKER / QUEUE
	To                       string `json:"to,omitempty"`
	Status                   string `json:"status,omitempty"`
	InitiatingWorkerSID      string `json:"initiating_worker_sid,omitempty"`
	InitiatingReservationSID string `json:"initiating_reservation_sid,omitempty"`
}

// EventSink receives CTI events (the tracker implements it). Delivery is at
// least once and in any order: implementations must converge to the same
// state whatever the order and however often an event repeats. An error
// means the event was not handled and must be delivered again.
type EventSink interface {
	HandleEvent(ctx context.Context, ev CTIEvent) error
}

// ConnectionStatus is an agent connection's state (the recording industry's
// words).
type ConnectionStatus string

// Connection statuses.
const (
	ConnAlerting ConnectionStatus = "Alerting" // reservation offered
	ConnActive   ConnectionStatus = "Active"   // accepted: talking
	ConnHold     ConnectionStatus = "Hold"
	ConnWrapUp   ConnectionStatus = "WrapUp"   // talk ended, after-call work
	ConnEnded    ConnectionStatus = "Ended"    // completed
	ConnDeclined ConnectionStatus = "Declined" // rejected, timed out, canceled, rescinded, failed: never connected
)

// Connection is one agent's part in a contact: one reservation.
type Connection struct {
	ReservationSID string           `json:"reservation_sid"`
	WorkerSID      string           `json:"worker_sid"`
	AgentExtension string           `json:"agent_extension"`
	Team           string           `json:"team,omitempty"` // the worker's team_name (or team_id) attribute
	Status         ConnectionStatus `json:"status"`
	EndReason      string           `json:"end_reason,omitempty"` // the event that ended an offer
	Version        int64            `json:"version"`              // highest reservation_version applied
	Monitored      bool             `json:"monitored"`            // recording rules say record this agent
	OfferedAt      time.Time        `json:"offered_at,omitzero"`
	AnsweredAt     time.Time        `json:"answered_at,omitzero"`
	WrapUpAt       time.Time        `json:"wrapup_at,omitzero"`
	EndedAt        time.Time        `json:"ended_at,omitzero"`
}

// ContactStatus is a contact's state.
type ContactStatus string

// Contact statuses.
const (
	ContactQueued    ContactStatus = "queued"    // in routing, no agent yet
	ContactActive    ContactStatus = "active"    // an agent is connected
	ContactWrapUp    ContactStatus = "wrapup"    // talk over
	ContactEnded     ContactStatus = "ended"     // completed
	ContactAbandoned ContactStatus = "abandoned" // canceled before an agent answered
)

// Contact is one customer call as the contact center sees it: a Flex task,
// its call legs and conference, and its agent connections.
type Contact struct {
	TaskSID       string            `json:"task_sid"`
	AccountSID    string            `json:"account_sid"`
	WorkspaceSID  string            `json:"workspace_sid,omitempty"`
	Status        ContactStatus     `json:"status"`
	CustomerCall  string            `json:"customer_call_sid,omitempty"`
	ConferenceSID string            `json:"conference_sid,omitempty"`
	Participants  map[string]string `json:"participants,omitempty"`
	Direction     string            `json:"direction,omitempty"`
	From          string            `json:"from,omitempty"`
	To            string            `json:"to,omitempty"`
	QueueSID      string            `json:"queue_sid,omitempty"`
	QueueName     string            `json:"queue_name,omitempty"`
	TaskVersion   int64             `json:"task_version"`
	CreatedAt     time.Time         `json:"created_at,omitzero"`
	EndedAt       time.Time         `json:"ended_at,omitzero"`
	Connections   []Connection      `json:"connections"`
	Transfers     []Transfer        `json:"transfers,omitempty"`
	// NotRecorded says why the recording rules exclude the whole call
	// (e.g. a call between two monitored agents); empty when the agents'
	// Monitored flags decide.
	NotRecorded string `json:"not_recorded,omitempty"`
}
