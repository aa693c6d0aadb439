package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"callrec"
	"callrec/simulate"
)

// The contact center every scenario plays in: the workspace, workflow,
// queue, channel and activity of testdata/twilio/event-streams.
const (
	workspaceSID   = "WS1629dee48cc4e53161f9b2be8614e062"
	workspaceName  = "Flex Task Assignment"
	workflowSID    = "WW2e2e2d35a15a6146a9bbbc246a9ea4cd"
	workflowName   = "Assign to Anyone"
	queueSID       = "WQ5b66b75bc906e008c3a9ed130b8b4385"
	queueName      = "Support"
	channelSID     = "TCabf564adad955c8b4134a31aa6298ec4"
	activitySID    = "WAe4894ca167b08880bfc35862f18575eb"
	activityName   = "Available"
	accountName    = "Acme Support"
	centerNumber   = "+14155550100"
	externalNumber = "+14155550199"
	imageURL       = "https://www.gravatar.com/avatar/00000000000000000000000000000000?d=mp"
	dataSchema     = "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4"
	typePrefix     = "com.twilio.taskrouter."
)

// Event is one CloudEvent a scenario emitted.
type Event struct {
	ID                 string               // CloudEvent id (EZ…): the deduplication key
	Type               callrec.CTIEventType // e.g. reservation.accepted
	Time               time.Time            // data.payload.timestamp
	Seq                int                  // position in the order the events happened, from 0
	TaskVersion        int64
	ReservationSID     string          // "" for task events without a reservation
	ReservationVersion int64           // -1 when the event carries none
	Data               json.RawMessage // the CloudEvent JSON
}

// field is one member of an ordered JSON object.
type field struct {
	k string
	v any
}

// object is a JSON object whose members keep their order, so the events
// read like Twilio's (and the fixtures).
type object []field

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(f.k)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.k, err)
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// twilioTime formats a time as Twilio's events do: UTC, milliseconds, Z.
func twilioTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// clientURI is the Voice SDK identity Flex dials for an agent: "client:"
// and the identity with every character but letters and digits escaped as
// _HH ("@" → "_40", "." → "_2E").
func clientURI(identity string) string {
	var b strings.Builder
	b.WriteString("client:")
	for i := 0; i < len(identity); i++ {
		c := identity[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02X", c)
	}
	return b.String()
}

// workerAttributes are a Flex worker's attributes, in the fixtures' order.
func workerAttributes(w *Worker) object {
	o := object{
		{"routing", object{{"skills", []string{"support"}}, {"levels", object{}}}},
		{"full_name", w.FullName},
		{"image_url", imageURL},
		{"roles", []string{"agent"}},
		{"contact_uri", clientURI(w.Identity)},
		{"disabled_skills", object{{"skills", []string{}}, {"levels", object{}}}},
		{"email", w.Identity},
	}
	if w.Team != "" {
		o = append(o, field{"team_name", w.Team})
	}
	return o
}

// pstnAttributes are the task attributes of an inbound PSTN call (Studio
// "Send to Flex" plus the Voice webhook parameters), in the fixtures' order.
func pstnAttributes(account, callSID, from string) object {
	return object{
		{"from_country", "US"}, {"called", centerNumber}, {"to_country", "US"}, {"to_city", "SAN FRANCISCO"},
		{"to_state", "CA"}, {"caller_country", "US"}, {"call_status", "in-progress"}, {"call_sid", callSID},
		{"account_sid", account}, {"from_zip", "94105"}, {"from", from}, {"direction", "inbound"},
		{"called_zip", "94107"}, {"caller_state", "CA"}, {"to_zip", "94107"}, {"called_country", "US"},
		{"from_city", "SAN FRANCISCO"}, {"called_city", "SAN FRANCISCO"}, {"caller_zip", "94105"},
		{"api_version", "2010-04-01"}, {"called_state", "CA"}, {"from_state", "CA"}, {"caller", from},
		{"caller_city", "SAN FRANCISCO"}, {"to", centerNumber}, {"type", "inbound"}, {"name", from},
	}
}

// internalAttributes are the task attributes of a call from one agent to
// another (Voice SDK client to client): both ends are client identities.
func internalAttributes(account, callSID string, caller, callee *Worker) object {
	from, to := clientURI(caller.Identity), clientURI(callee.Identity)
	return object{
		{"call_sid", callSID}, {"account_sid", account}, {"from", from}, {"caller", from},
		{"to", to}, {"called", to}, {"direction", "inbound"}, {"call_status", "in-progress"},
		{"api_version", "2010-04-01"}, {"type", "internal"}, {"targetWorker", callee.Identity},
		{"name", caller.FullName},
	}
}

// transfer is a TaskRouter task transfer.
type transfer struct {
	sid, mode, typ, to string
	from               *Worker // the initiating worker (and their reservation)
	started            time.Time
}

// reservation is the builder's state of one reservation.
type reservation struct {
	worker  *Worker
	version int64
}

// builder makes the CloudEvents of one task, mirroring the fixtures in
// testdata/twilio/event-streams field for field, and keeps the task's
// state: assignment status, attributes and versions.
type builder struct {
	account     string
	task        string
	created     time.Time // task_date_created
	queued      time.Time // task_queue_entered_date
	attrs       object    // task attributes without the conference
	conference  string
	parts       object // conference participants, label → call SID
	status      string
	taskVersion int64
	res         map[string]*reservation
	newSID      func(prefix string) string
}

func newBuilder(account, task string, attrs object) *builder {
	return &builder{account: account, task: task, attrs: attrs, res: map[string]*reservation{},
		newSID: func(prefix string) string { return simulate.NewSID(prefix, nil) }}
}

// taskAttributes returns the task attributes as Twilio sends them: a JSON
// string.
func (b *builder) taskAttributes() string {
	a := append(object(nil), b.attrs...)
	if b.conference != "" {
		a = append(a, field{"conference", object{{"sid", b.conference}, {"participants", b.parts}}})
	}
	s, err := json.Marshal(a)
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return string(s)
}

// setStatus changes the task's assignment status; a change is a new task
// version.
func (b *builder) setStatus(s string) {
	if b.status != s {
		b.status = s
		b.taskVersion++
	}
}

// event builds one CloudEvent: the payload's task part, then the
// reservation part if res is set, then tail.
func (b *builder) event(typ callrec.CTIEventType, at time.Time, desc, res string, tail object) Event {
	evSID := b.newSID("EV")
	resource, resourceSID, group := "task", b.task, "task"
	if strings.HasPrefix(string(typ), "reservation.") {
		resource, resourceSID, group = "reservation", res, "reservation"
	}
	ts := twilioTime(at)
	payload := object{
		{"sid", evSID}, {"eventtype", string(typ)}, {"account_sid", b.account}, {"timestamp", ts},
		{"event_description", desc}, {"resource_type", resource}, {"resource_sid", resourceSID},
		{"workspace_sid", workspaceSID}, {"workspace_name", workspaceName},
		{"workflow_sid", workflowSID}, {"workflow_name", workflowName},
		{"task_sid", b.task}, {"task_attributes", b.taskAttributes()},
		{"task_age", int64(at.Sub(b.created) / time.Second)}, {"task_date_created", twilioTime(b.created)},
		{"task_priority", 0}, {"task_assignment_status", b.status},
		{"task_channel_sid", channelSID}, {"task_channel_unique_name", "voice"},
		{"task_queue_sid", queueSID}, {"task_queue_name", queueName},
		{"task_queue_entered_date", twilioTime(b.queued)}, {"task_queue_target_expression", "1==1"},
		{"task_routing_target", nil}, {"task_version", b.taskVersion},
	}
	ev := Event{Type: typ, Time: at.UTC().Truncate(time.Millisecond), TaskVersion: b.taskVersion, ReservationVersion: -1}
	if r := b.res[res]; r != nil {
		payload = append(payload,
			field{"reservation_sid", res}, field{"reservation_version", r.version},
			field{"worker_sid", r.worker.SID}, field{"worker_name", r.worker.Identity},
			field{"worker_attributes", mustString(workerAttributes(r.worker))},
			field{"worker_activity_sid", activitySID}, field{"worker_activity_name", activityName},
			field{"worker_channel_capacity", 1}, field{"worker_channel_available", 1},
			field{"worker_channel_available_capacity", 100}, field{"worker_channel_task_count", 1})
		ev.ReservationSID, ev.ReservationVersion = res, r.version
	}
	payload = append(payload, tail...)
	ev.ID = b.newSID("EZ")
	envelope := object{
		{"specversion", "1.0"},
		{"type", typePrefix + string(typ)},
		{"source", "/v1/Workspaces/" + workspaceSID + "/Events/" + evSID},
		{"id", ev.ID},
		{"dataschema", dataSchema},
		{"datacontenttype", "application/json"},
		{"time", ts},
		{"data", object{
			{"sid", evSID}, {"name", eventName(typ)}, {"account_sid", b.account},
			{"account_friendly_name", accountName}, {"parent_account_sid", b.account},
			{"parent_friendly_name", accountName}, {"timestamp", ts}, {"level", "INFO"},
			{"group", group}, {"product_name", "TaskRouter"}, {"publisher", workspaceName},
			{"publisher_metadata", "{}"}, {"payload_type", "application/json"}, {"payload", payload},
		}},
	}
	ev.Data = mustJSON(envelope)
	return ev
}

// eventName is data.name: "reservation.accepted" → "ReservationAccepted",
// "task.transfer-initiated" → "TaskTransferInitiated".
func eventName(typ callrec.CTIEventType) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(string(typ), func(r rune) bool { return r == '.' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("scenario: encode event: %v", err)) // built from strings and numbers only
	}
	return b
}

func mustString(v any) string { return string(mustJSON(v)) }

// The task's life. Each method changes the state as TaskRouter would and
// returns the event that tells of it.

func (b *builder) taskCreated(at time.Time) Event {
	b.created, b.queued = at.Add(-120*time.Millisecond), at.Add(30*time.Millisecond)
	b.status, b.taskVersion = "pending", 1
	return b.event(callrec.EventTaskCreated, at, "Task "+b.task+" created", "", nil)
}

// offer reserves the task for w: a new reservation.
func (b *builder) offer(w *Worker, at time.Time) Event {
	w.ReservationSID = b.newSID("WR")
	b.res[w.ReservationSID] = &reservation{worker: w}
	if b.status == "pending" {
		b.setStatus("reserved")
	}
	return b.event(callrec.EventReservationCreated, at,
		fmt.Sprintf("Reservation %s created for Worker %s", w.ReservationSID, w.SID), w.ReservationSID, nil)
}

func (b *builder) reject(w *Worker, at time.Time) Event {
	b.res[w.ReservationSID].version++
	b.setStatus("pending")
	return b.event(callrec.EventReservationRejected, at,
		fmt.Sprintf("Reservation %s rejected by Worker %s", w.ReservationSID, w.SID), w.ReservationSID, nil)
}

func (b *builder) accept(w *Worker, at time.Time) Event {
	b.res[w.ReservationSID].version++
	b.status = "assigned"
	b.taskVersion++ // assigned to this worker
	return b.event(callrec.EventReservationAccepted, at,
		fmt.Sprintf("Reservation %s accepted by Worker %s", w.ReservationSID, w.SID), w.ReservationSID, nil)
}

// conferenceUp is the task.updated by which Flex writes the conference and
// its customer and worker participants into the task attributes.
func (b *builder) conferenceUp(at time.Time, sid, customer, worker string) Event {
	b.conference = sid
	b.parts = object{{"customer", customer}, {"worker", worker}}
	b.taskVersion++
	return b.event(callrec.EventTaskUpdated, at, "Task "+b.task+" updated", "", nil)
}

// transferEvent is a task.transfer-* event of x (status from the type).
func (b *builder) transferEvent(typ callrec.CTIEventType, x *transfer, at time.Time) Event {
	status := strings.TrimPrefix(string(typ), "task.transfer-")
	tail := object{
		{"task_transfer_sid", x.sid}, {"transfer_initiating_worker_sid", x.from.SID},
		{"transfer_initiating_reservation_sid", x.from.ReservationSID}, {"transfer_mode", x.mode},
		{"transfer_type", x.typ}, {"transfer_to", x.to}, {"transfer_status", status},
		{"transfer_started", twilioTime(x.started)},
	}
	return b.event(typ, at, fmt.Sprintf("Transfer %s %s", x.sid, status), x.from.ReservationSID, tail)
}

// wrapup ends w's talk; last says the task itself goes to wrap-up (w was
// the last agent on it), which task.wrapup then tells.
func (b *builder) wrapup(w *Worker, at time.Time, last bool) Event {
	b.res[w.ReservationSID].version++
	if last {
		b.setStatus("wrapping")
	}
	return b.event(callrec.EventReservationWrapup, at,
		fmt.Sprintf("Reservation %s wrapped up by Worker %s", w.ReservationSID, w.SID), w.ReservationSID, nil)
}

func (b *builder) taskWrapup(at time.Time) Event {
	return b.event(callrec.EventTaskWrapup, at, "Task "+b.task+" wrapping up", "", object{{"reason", "task wrapped"}})
}

// complete ends w's after-call work; last completes the task too.
func (b *builder) complete(w *Worker, at time.Time, last bool) Event {
	b.res[w.ReservationSID].version++
	if last {
		b.setStatus("completed")
	}
	return b.event(callrec.EventReservationCompleted, at,
		fmt.Sprintf("Reservation %s completed by Worker %s", w.ReservationSID, w.SID), w.ReservationSID, nil)
}

func (b *builder) taskCompleted(at time.Time) Event {
	const reason = "Task completed by worker"
	return b.event(callrec.EventTaskCompleted, at, "Task "+b.task+" completed", "",
		object{{"reason", reason}, {"task_completed_reason", reason}})
}

// cancel: the caller hung up while w's offer was pending; the reservation
// and then the task are canceled.
func (b *builder) cancel(w *Worker, at time.Time) Event {
	b.res[w.ReservationSID].version++
	b.setStatus("canceled")
	return b.event(callrec.EventReservationCanceled, at, fmt.Sprintf("Reservation %s canceled", w.ReservationSID),
		w.ReservationSID, object{{"task_canceled_reason", "hangup"}, {"reason", "hangup"}})
}

func (b *builder) taskCanceled(at time.Time) Event {
	return b.event(callrec.EventTaskCanceled, at, "Task "+b.task+" canceled", "",
		object{{"task_canceled_reason", "hangup"}, {"reason", "hangup"}})
}
