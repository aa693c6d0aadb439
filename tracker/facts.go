package tracker

import (
	"fmt"
	"strings"
	"time"

	"callrec"
)

// The tracker keeps, per task, the facts its events carried, each merged by
// a commutative, associative and idempotent rule (earliest time, highest
// version, a fixed order on values). The state after a set of events is
// therefore the same whatever order they came in and however often each
// came; everything else (statuses, the Contact, the recording plan) is
// derived from these facts.

// stamp is a time learned from events: the earliest one wins.
type stamp struct {
	Set bool      `json:"set,omitempty"`
	At  time.Time `json:"at,omitzero"`
}

func (s *stamp) offer(t time.Time) {
	if !s.Set || t.Before(s.At) {
		*s = stamp{Set: true, At: t}
	}
}

// reg is a value learned from events: the one from the highest version
// wins, then the latest time, then the greatest string. Empty values are
// ignored.
type reg struct {
	V int64     `json:"v,omitempty"`
	T time.Time `json:"t,omitzero"`
	S string    `json:"s,omitempty"`
}

func (r *reg) offer(v int64, t time.Time, s string) {
	if s == "" {
		return
	}
	if r.S == "" || v > r.V || (v == r.V && (t.After(r.T) || (t.Equal(r.T) && s > r.S))) {
		*r = reg{V: v, T: t, S: s}
	}
}

// set offers a value that should not change (an identity).
func (r *reg) set(s string) { r.offer(0, time.Time{}, s) }

// record holds the facts about one task (one contact).
type record struct {
	TaskSID     string    `json:"task_sid"`
	Account     reg       `json:"account,omitzero"`
	Workspace   reg       `json:"workspace,omitzero"`
	TaskVersion int64     `json:"task_version"`
	First       stamp     `json:"first,omitzero"` // earliest event time
	CallSID     reg       `json:"call_sid,omitzero"`
	From        reg       `json:"from,omitzero"`
	To          reg       `json:"to,omitzero"`
	Direction   reg       `json:"direction,omitzero"`
	Type        reg       `json:"type,omitzero"`          // task attribute "type"
	Internal    reg       `json:"internal,omitzero"`      // task attribute "internal"
	Target      reg       `json:"target_worker,omitzero"` // task attribute "targetWorker"
	Conference  reg       `json:"conference,omitzero"`
	Participant regMap    `json:"participants,omitempty"`
	QueueSID    reg       `json:"queue_sid,omitzero"`
	QueueName   reg       `json:"queue_name,omitzero"`
	Wrapup      stamp     `json:"wrapup,omitzero"` // task-level events
	Completed   stamp     `json:"completed,omitzero"`
	Canceled    stamp     `json:"canceled,omitzero"`
	Deleted     stamp     `json:"deleted,omitzero"`
	Conns       connMap   `json:"connections,omitempty"`
	Transfers   xferMap   `json:"transfers,omitempty"`
	Emit        emitState `json:"emit"`
	// Seen is when the tracker last handled an event of the task, by its
	// own clock: not a fact of the call but the start of its retention
	// (see retention.go).
	Seen time.Time `json:"seen,omitzero"`
}

type (
	regMap  = map[string]reg
	connMap = map[string]*connFacts
	xferMap = map[string]*xferFacts
)

// connFacts are the facts about one reservation (one agent connection).
type connFacts struct {
	Worker    reg    `json:"worker,omitzero"`
	Agent     reg    `json:"agent,omitzero"`
	Team      reg    `json:"team,omitzero"`       // worker attribute team_name, else team_id
	Monitored bool   `json:"monitored,omitempty"` // any event said monitored
	Version   int64  `json:"version"`
	Offered   stamp  `json:"offered,omitzero"`
	Answered  stamp  `json:"answered,omitzero"`
	WrapUp    stamp  `json:"wrapup,omitzero"`
	Completed stamp  `json:"completed,omitzero"`
	Declined  stamp  `json:"declined,omitzero"`
	Decline   string `json:"decline,omitempty"` // the declining event type (of the earliest decline)
}

// xferFacts are the facts about one task transfer.
type xferFacts struct {
	Mode      reg   `json:"mode,omitzero"`
	Type      reg   `json:"type,omitzero"`
	To        reg   `json:"to,omitzero"`
	Status    reg   `json:"status,omitzero"` // V is the status rank
	InitWork  reg   `json:"init_worker,omitzero"`
	InitRes   reg   `json:"init_reservation,omitzero"`
	First     stamp `json:"first,omitzero"`
	Completed stamp `json:"completed,omitzero"`
}

func newRecord(taskSID string) *record {
	return &record{TaskSID: taskSID, TaskVersion: -1}
}

// apply merges the facts of ev into r.
func (r *record) apply(ev *callrec.CTIEvent, rules Rules) {
	r.Account.set(ev.AccountSID)
	r.Workspace.set(ev.WorkspaceSID)
	r.TaskVersion = max(r.TaskVersion, ev.TaskVersion)
	r.First.offer(ev.Time)

	v, t, a := ev.TaskVersion, ev.Time, &ev.Task
	r.CallSID.offer(v, t, a.CallSID)
	r.From.offer(v, t, a.From)
	r.To.offer(v, t, a.To)
	r.Direction.offer(v, t, a.Direction)
	r.Type.offer(v, t, rawString(a.Raw, "type"))
	r.Internal.offer(v, t, rawString(a.Raw, "internal"))
	r.Target.offer(v, t, rawString(a.Raw, "targetWorker"))
	if c := a.Conference; c != nil {
		r.Conference.offer(v, t, c.SID)
		for label, sid := range c.Participants {
			if r.Participant == nil {
				r.Participant = make(regMap)
			}
			p := r.Participant[label]
			p.offer(v, t, sid)
			r.Participant[label] = p
		}
	}
	r.QueueSID.offer(v, t, ev.TaskQueueSID)
	r.QueueName.offer(v, t, ev.TaskQueueName)

	typ := string(ev.Type)
	switch {
	case ev.Type == callrec.EventTaskWrapup:
		r.Wrapup.offer(t)
	case ev.Type == callrec.EventTaskCompleted:
		r.Completed.offer(t)
	case ev.Type == callrec.EventTaskCanceled:
		r.Canceled.offer(t)
	case ev.Type == callrec.EventTaskDeleted, ev.Type == callrec.EventTaskSystemDeleted:
		r.Deleted.offer(t)
	case strings.HasPrefix(typ, "reservation."):
		r.applyReservation(ev, rules)
	case strings.HasPrefix(typ, "task.transfer-"):
		r.applyTransfer(ev)
	}
}

func (r *record) applyReservation(ev *callrec.CTIEvent, rules Rules) {
	if ev.ReservationSID == "" {
		return
	}
	if r.Conns == nil {
		r.Conns = make(connMap)
	}
	c := r.Conns[ev.ReservationSID]
	if c == nil {
		c = &connFacts{Version: -1}
		r.Conns[ev.ReservationSID] = c
	}
	c.Worker.set(ev.WorkerSID)
	c.Agent.set(ev.AgentExtension())
	team := rawString(ev.Worker.Raw, "team_name")
	if team == "" {
		team = rawString(ev.Worker.Raw, "team_id")
	}
	c.Team.set(team)
	c.Monitored = c.Monitored || rules.Monitored(ev)
	c.Version = max(c.Version, ev.ReservationVersion)
	t := ev.Time
	switch ev.Type {
	case callrec.EventReservationCreated:
		c.Offered.offer(t)
	case callrec.EventReservationAccepted:
		c.Answered.offer(t)
	case callrec.EventReservationWrapup:
		c.WrapUp.offer(t)
	case callrec.EventReservationCompleted:
		c.Completed.offer(t)
	case callrec.EventReservationRejected, callrec.EventReservationTimeout,
		callrec.EventReservationCanceled, callrec.EventReservationRescinded,
		callrec.EventReservationFailed:
		reason := string(ev.Type)
		if !c.Declined.Set || t.Before(c.Declined.At) || (t.Equal(c.Declined.At) && reason < c.Decline) {
			c.Declined = stamp{Set: true, At: t}
			c.Decline = reason
		}
	}
}

// Transfer statuses by rank: a transfer's status only moves forward.
var xferRank = map[string]int64{
	"initiated": 0, "attempt-failed": 1, "failed": 2, "canceled": 2, "completed": 2,
}

func (r *record) applyTransfer(ev *callrec.CTIEvent) {
	tr := ev.Transfer
	if tr == nil || tr.SID == "" {
		return
	}
	if r.Transfers == nil {
		r.Transfers = make(xferMap)
	}
	x := r.Transfers[tr.SID]
	if x == nil {
		x = &xferFacts{}
		r.Transfers[tr.SID] = x
	}
	x.Mode.set(tr.Mode)
	x.Type.set(tr.Type)
	x.To.set(tr.To)
	x.InitWork.set(tr.InitiatingWorkerSID)
	x.InitRes.set(tr.InitiatingReservationSID)
	x.First.offer(ev.Time)
	status := strings.ToLower(tr.Status)
	if status == "" {
		status = strings.TrimPrefix(string(ev.Type), "task.transfer-")
	}
	rank, ok := xferRank[status]
	if !ok {
		rank = 1
	}
	x.Status.offer(rank, time.Time{}, status)
	if status == "completed" {
		x.Completed.offer(ev.Time)
	}
}

// rawString returns a raw task attribute as a string ("" when absent).
func rawString(raw map[string]any, key string) string {
	v, ok := raw[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	switch v.(type) {
	case bool, float64, int, int64, float32:
		return fmt.Sprint(v)
	}
	return ""
}
