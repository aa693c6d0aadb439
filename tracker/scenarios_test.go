package tracker_test

import (
	"slices"
	"time"

	"callrec"
	"callrec/tracker"
)

// Short names for event types.
const (
	taskCreated   = callrec.EventTaskCreated
	taskWrapup    = callrec.EventTaskWrapup
	taskCompleted = callrec.EventTaskCompleted
	taskCanceled  = callrec.EventTaskCanceled
	resCreated    = callrec.EventReservationCreated
	resAccepted   = callrec.EventReservationAccepted
	resRejected   = callrec.EventReservationRejected
	resCanceled   = callrec.EventReservationCanceled
	resWrapup     = callrec.EventReservationWrapup
	resCompleted  = callrec.EventReservationCompleted
	xferInit      = callrec.EventTransferInitiated
	xferDone      = callrec.EventTransferCompleted
)

// wantDecision is a decision expected when the events come in their real
// order: after events[after] is applied.
type wantDecision struct {
	after  int
	kind   tracker.DecisionKind
	gen    int
	reason string
	agent  agent
	call   string // expected CallSID
	conf   string // expected ConferenceSID
}

// scenario is one call: its events in real order, the rules, and what must
// come out.
type scenario struct {
	name    string
	rules   tracker.Rules
	events  []callrec.CTIEvent
	want    []wantDecision
	contact callrec.Contact
	// resumes, if set, says whether an arrival order (indexes into events,
	// possibly repeated) makes the tracker resume a stopped stream: one
	// generation more than in the real order (see the package doc).
	resumes func(order []int) bool
}

// ts is at(sec), or the zero time for a negative sec.
func ts(sec int) time.Time {
	if sec < 0 {
		return time.Time{}
	}
	return at(sec)
}

// conn is an expected connection; times are offered, answered, wrap-up and
// ended seconds (-1: none).
func conn(res string, a agent, mon bool, st callrec.ConnectionStatus, ver int64, t [4]int, reason string) callrec.Connection {
	return callrec.Connection{
		ReservationSID: res, WorkerSID: a.sid, AgentExtension: a.name, Status: st, EndReason: reason,
		Version: ver, Monitored: mon,
		OfferedAt: ts(t[0]), AnsweredAt: ts(t[1]), WrapUpAt: ts(t[2]), EndedAt: ts(t[3]),
	}
}

// inboundContact is the expected contact of an inbound() call that reached
// an agent.
func inboundContact(st callrec.ContactStatus, taskVer int64, ended int, conns ...callrec.Connection) callrec.Contact {
	return callrec.Contact{
		TaskSID: taskSID, AccountSID: accountSID, WorkspaceSID: workspaceSID, Status: st,
		CustomerCall: customerLeg, ConferenceSID: conferenceID, Participants: both,
		Direction: "inbound", From: customerNum, To: centerNum,
		QueueSID: queueSID, QueueName: "Support", TaskVersion: taskVer,
		CreatedAt: at(0), EndedAt: ts(ended), Connections: conns,
	}
}

func scenarios() []scenario {
	return []scenario{
		answered(), rejectedThenAccepted(), hangupInQueue(), warmTransfer(),
		externalTransfer(), internalCall(), internalFromUnmonitored(),
		unmonitoredTransfer(), coldTransfer(), outboundPending(), duplicated(),
	}
}

func answeredEvents() *call {
	return inbound().
		taskEv(taskCreated, 0).
		res(resCreated, alice, resA, 1).
		res(resAccepted, alice, resA, 8).
		conference(9, both).
		res(resWrapup, alice, resA, 120).
		res(resCompleted, alice, resA, 150).
		taskEv(taskWrapup, 120).
		taskEv(taskCompleted, 150)
}

func answered() scenario {
	return scenario{
		name:   "answered",
		rules:  defaultRules,
		events: answeredEvents().events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg},
			{after: 4, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: alice, call: customerLeg, conf: conferenceID},
		},
		contact: inboundContact(callrec.ContactEnded, 4, 150,
			conn(resA, alice, true, callrec.ConnEnded, 3, [4]int{1, 8, 120, 150}, "")),
	}
}

func rejectedThenAccepted() scenario {
	c := inbound().
		taskEv(taskCreated, 0).
		res(resCreated, alice, resA, 1).
		res(resRejected, alice, resA, 5).
		res(resCreated, bob, resB, 6).
		res(resAccepted, bob, resB, 12).
		conference(13, both).
		res(resWrapup, bob, resB, 200).
		res(resCompleted, bob, resB, 230).
		taskEv(taskWrapup, 200).
		taskEv(taskCompleted, 230)
	return scenario{
		name:   "rejected by A, accepted by B",
		rules:  defaultRules,
		events: c.events,
		want: []wantDecision{
			{after: 4, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: bob, call: customerLeg},
			{after: 6, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: bob, call: customerLeg, conf: conferenceID},
		},
		contact: inboundContact(callrec.ContactEnded, 4, 230,
			conn(resA, alice, true, callrec.ConnDeclined, 1, [4]int{1, -1, -1, 5}, string(resRejected)),
			conn(resB, bob, true, callrec.ConnEnded, 3, [4]int{6, 12, 200, 230}, "")),
	}
}

func hangupInQueue() scenario {
	c := inbound().
		taskEv(taskCreated, 0).
		res(resCreated, alice, resA, 2).
		res(resCanceled, alice, resA, 15).
		taskEv(taskCanceled, 15)
	want := inboundContact(callrec.ContactAbandoned, 1, 15,
		conn(resA, alice, true, callrec.ConnDeclined, 1, [4]int{2, -1, -1, 15}, string(resCanceled)))
	want.ConferenceSID, want.Participants = "", nil
	return scenario{name: "caller hangs up in queue", rules: defaultRules, events: c.events, contact: want}
}

func internalCallEvents(from agent) *call {
	const callerLeg = "CA7f3e1d2c4b5a69788796a5b4c3d2e1f0"
	c := inbound().withAttrs(callrec.TaskAttributes{
		CallSID: callerLeg, From: from.clientURI(), To: bob.clientURI(), Direction: "inbound",
		Raw: map[string]any{"call_sid": callerLeg, "from": from.clientURI(), "to": bob.clientURI(),
			"direction": "inbound", "name": from.full},
	})
	return c.taskEv(taskCreated, 0).
		res(resCreated, bob, resB, 1).
		res(resAccepted, bob, resB, 3).
		conference(4, map[string]string{"customer": callerLeg, "worker": agentLeg}).
		res(resWrapup, bob, resB, 60).
		res(resCompleted, bob, resB, 70).
		taskEv(taskWrapup, 60).
		taskEv(taskCompleted, 70)
}

func internalContact(from agent) callrec.Contact {
	const callerLeg = "CA7f3e1d2c4b5a69788796a5b4c3d2e1f0"
	want := inboundContact(callrec.ContactEnded, 4, 70,
		conn(resB, bob, true, callrec.ConnEnded, 3, [4]int{1, 3, 60, 70}, ""))
	want.CustomerCall, want.From, want.To = callerLeg, from.clientURI(), bob.clientURI()
	want.Participants = map[string]string{"customer": callerLeg, "worker": agentLeg}
	return want
}

func internalCall() scenario {
	want := internalContact(alice)
	want.NotRecorded = tracker.NotRecordedInternal
	return scenario{
		name:    "internal call between monitored agents",
		rules:   defaultRules,
		events:  internalCallEvents(alice).events,
		contact: want,
	}
}

func internalFromUnmonitored() scenario {
	const callerLeg = "CA7f3e1d2c4b5a69788796a5b4c3d2e1f0"
	return scenario{
		name:   "internal call from an unmonitored agent",
		rules:  defaultRules,
		events: internalCallEvents(carol).events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: bob, call: callerLeg},
			{after: 4, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: bob, call: callerLeg, conf: conferenceID},
		},
		contact: internalContact(carol),
	}
}

func outboundPending() scenario {
	c := inbound().withAttrs(callrec.TaskAttributes{
		From: centerNum, To: customerNum, Direction: "outbound",
		Raw: map[string]any{"from": centerNum, "to": customerNum, "direction": "outbound", "type": "outbound"},
	})
	c.taskEv(taskCreated, 0).
		res(resCreated, alice, resA, 0).
		res(resAccepted, alice, resA, 1).
		conference(6, both).
		res(resWrapup, alice, resA, 90).
		res(resCompleted, alice, resA, 100).
		taskEv(taskWrapup, 90).
		taskEv(taskCompleted, 100)
	want := inboundContact(callrec.ContactEnded, 4, 100,
		conn(resA, alice, true, callrec.ConnEnded, 3, [4]int{0, 1, 90, 100}, ""))
	want.Direction, want.From, want.To = "outbound", centerNum, customerNum
	return scenario{
		name:   "outbound call: start waits for the conference",
		rules:  defaultRules,
		events: c.events,
		want: []wantDecision{
			{after: 3, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg, conf: conferenceID},
			{after: 4, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: alice, call: customerLeg, conf: conferenceID},
		},
		contact: want,
	}
}

// duplicated is the answered call with every event delivered twice in a
// row (a webhook retry, a Kinesis replay).
func duplicated() scenario {
	s := answered()
	s.name = "duplicated events"
	var evs []callrec.CTIEvent
	for _, ev := range s.events {
		evs = append(evs, ev, ev)
	}
	s.events = evs
	s.want = slices.Clone(s.want)
	for i := range s.want {
		s.want[i].after *= 2
	}
	return s
}
