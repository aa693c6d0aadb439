package tracker_test

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"callrec"
	"callrec/tracker"
)

// Values from testdata/twilio/event-streams (the shared answered-call
// scenario), plus made-up but well-formed SIDs for the other parties.
const (
	accountSID   = "ACe268443e43d93dab7ebef303bbe9642f"
	workspaceSID = "WS1629dee48cc4e53161f9b2be8614e062"
	taskSID      = "WTc146b6ad38277b931d94d82f20703136"
	customerLeg  = "CAc0bb2f535401483f8461ddeef83c2d68"
	agentLeg     = "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
	conferenceID = "CFab3049da9a0cd8d6e8b7c62586752472"
	queueSID     = "WQ5b66b75bc906e008c3a9ed130b8b4385"
	queue2SID    = "WQe8d837e84e2d942bc8b59197ca8011d8"
	resA         = "WR16792ea346317c17b1487d339b1a86ed"
	resB         = "WR2c0e7e63c2f34b7f8d1f0e5a9b3c4d51"
	transferSID  = "TT321d2d398c00882d013299877a6fb8ba"
	customerNum  = "+14155550123"
	centerNum    = "+14155550100"
	externalNum  = "+14155550199"
)

var t0 = time.Date(2025, 6, 3, 14, 2, 0, 0, time.UTC)

// at is t0 plus sec seconds.
func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

type agent struct {
	sid, name, full, team string
	roles                 []string
}

var (
	alice = agent{"WK6384e2b2184bcbf58eccf10ca7a6563c", "alice.agent@example.com", "Alice Agent", "sales", []string{"agent"}}
	bob   = agent{"WK9d0f3c1b2a4e5f60718293a4b5c6d7e8", "bob.agent@example.com", "Bob Agent", "sales", []string{"agent", "supervisor"}}
	carol = agent{"WK1a2b3c4d5e6f708192a3b4c5d6e7f809", "carol.agent@example.com", "Carol Agent", "support", []string{"agent"}}
)

// defaultRules monitor everyone but Carol.
var defaultRules = tracker.Rules{MonitorAll: true, Exclude: []string{carol.name}}

// clientURI is the Voice SDK identity Flex dials for an agent.
func (a agent) clientURI() string {
	return "client:" + strings.NewReplacer("@", "_40", ".", "_2E").Replace(a.name)
}

// attrs are the agent's worker attributes as the eventadapter decodes them.
func (a agent) attrs() callrec.WorkerAttributes {
	roles := make([]any, len(a.roles))
	for i, r := range a.roles {
		roles[i] = r
	}
	return callrec.WorkerAttributes{
		Email: a.name, FullName: a.full, Roles: a.roles, ContactURI: a.clientURI(),
		Raw: map[string]any{
			"email": a.name, "full_name": a.full, "roles": roles, "team": a.team,
			"contact_uri": a.clientURI(),
			"routing":     map[string]any{"skills": []any{"support"}, "levels": map[string]any{}},
		},
	}
}

// call builds the events of one call in their real order.
type call struct {
	task      string
	attrs     callrec.TaskAttributes
	queueSID  string
	queueName string
	taskVer   int64
	resVer    map[string]int64
	events    []callrec.CTIEvent
}

// inbound starts a customer's inbound call (Studio "Send to Flex"
// attributes: call_sid present from the start).
func inbound() *call {
	return &call{
		task: taskSID, queueSID: queueSID, queueName: "Support", resVer: map[string]int64{},
		attrs: callrec.TaskAttributes{
			CallSID: customerLeg, From: customerNum, To: centerNum, Direction: "inbound",
			Raw: map[string]any{"call_sid": customerLeg, "from": customerNum, "to": centerNum,
				"direction": "inbound", "type": "inbound", "name": customerNum},
		},
	}
}

// withAttrs replaces the task attributes.
func (c *call) withAttrs(a callrec.TaskAttributes) *call { c.attrs = a; return c }

func (c *call) event(typ callrec.CTIEventType, sec int) callrec.CTIEvent {
	a := c.attrs
	a.Raw = maps.Clone(a.Raw)
	if a.Conference != nil {
		conf := *a.Conference
		conf.Participants = maps.Clone(conf.Participants)
		a.Conference = &conf
	}
	return callrec.CTIEvent{
		ID:                 fmt.Sprintf("EZ%032x", len(c.events)+1),
		Type:               typ,
		Time:               at(sec),
		Received:           at(sec).Add(700 * time.Millisecond),
		Origin:             "test",
		AccountSID:         accountSID,
		WorkspaceSID:       workspaceSID,
		TaskSID:            c.task,
		TaskVersion:        c.taskVer,
		TaskChannel:        "voice",
		TaskQueueSID:       c.queueSID,
		TaskQueueName:      c.queueName,
		Task:               a,
		ReservationVersion: -1,
	}
}

// taskEv adds a task event; every one but task.created bumps the version.
func (c *call) taskEv(typ callrec.CTIEventType, sec int) *call {
	if typ != callrec.EventTaskCreated {
		c.taskVer++
	}
	ev := c.event(typ, sec)
	if typ == callrec.EventTaskCanceled {
		ev.TaskReason = "hangup"
	}
	c.events = append(c.events, ev)
	return c
}

// res adds a reservation event of agent a.
func (c *call) res(typ callrec.CTIEventType, a agent, res string, sec int) *call {
	v, ok := c.resVer[res]
	if ok {
		v++
	}
	c.resVer[res] = v
	if typ == callrec.EventReservationAccepted {
		c.taskVer++ // the task becomes assigned
	}
	ev := c.event(typ, sec)
	ev.ReservationSID, ev.ReservationVersion = res, v
	ev.WorkerSID, ev.WorkerName, ev.Worker = a.sid, a.name, a.attrs()
	c.events = append(c.events, ev)
	return c
}

// conference adds the task.updated by which Flex writes the conference.
func (c *call) conference(sec int, participants map[string]string) *call {
	c.attrs.Conference = &callrec.Conference{SID: conferenceID, Participants: participants}
	c.attrs.Raw = maps.Clone(c.attrs.Raw)
	if c.attrs.Raw == nil {
		c.attrs.Raw = map[string]any{}
	}
	c.attrs.Raw["conference"] = map[string]any{"sid": conferenceID}
	return c.taskEv(callrec.EventTaskUpdated, sec)
}

// both are the participants Flex writes for a customer and one agent.
var both = map[string]string{"customer": customerLeg, "worker": agentLeg}

// transfer adds a task transfer event initiated by a on res.
func (c *call) transfer(typ callrec.CTIEventType, sec int, a agent, res string, tr callrec.Transfer) *call {
	tr.SID, tr.InitiatingWorkerSID, tr.InitiatingReservationSID = transferSID, a.sid, res
	tr.Status = strings.TrimPrefix(string(typ), "task.transfer-")
	ev := c.event(typ, sec)
	ev.ReservationSID, ev.ReservationVersion = res, c.resVer[res]
	ev.WorkerSID, ev.WorkerName, ev.Worker = a.sid, a.name, a.attrs()
	ev.Transfer = &tr
	c.events = append(c.events, ev)
	return c
}

// moveQueue sends the task to another queue (a transfer to a queue).
func (c *call) moveQueue(sid, name string) *call {
	c.queueSID, c.queueName = sid, name
	c.taskVer++
	return c
}
