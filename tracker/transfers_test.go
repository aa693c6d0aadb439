package tracker_test

import (
	"callrec"
	"callrec/tracker"
)

// transferTo builds a transfer from Alice to agent b on resB (warm): b
// joins while Alice is still on the call, then Alice leaves.
func transferTo(b agent) *call {
	tr := callrec.Transfer{Mode: "WARM", Type: "WORKER", To: b.sid}
	return inbound().
		taskEv(taskCreated, 0).                  // 0
		res(resCreated, alice, resA, 1).         // 1
		res(resAccepted, alice, resA, 8).        // 2
		conference(9, both).                     // 3
		transfer(xferInit, 60, alice, resA, tr). // 4
		res(resCreated, b, resB, 61).            // 5
		res(resAccepted, b, resB, 70).           // 6
		transfer(xferDone, 71, alice, resA, tr). // 7
		res(resWrapup, alice, resA, 90).         // 8
		res(resCompleted, alice, resA, 100).     // 9
		res(resWrapup, b, resB, 200).            // 10
		res(resCompleted, b, resB, 230).         // 11
		taskEv(taskWrapup, 200).                 // 12
		taskEv(taskCompleted, 230)               // 13
}

func transferContact(b agent, bMonitored bool) callrec.Contact {
	c := inboundContact(callrec.ContactEnded, 5, 230,
		conn(resA, alice, true, callrec.ConnEnded, 3, [4]int{1, 8, 90, 100}, ""),
		conn(resB, b, bMonitored, callrec.ConnEnded, 3, [4]int{61, 70, 200, 230}, ""))
	c.Transfers = []callrec.Transfer{{
		SID: transferSID, Mode: "WARM", Type: "WORKER", To: b.sid, Status: "completed",
		InitiatingWorkerSID: alice.sid, InitiatingReservationSID: resA,
	}}
	return c
}

func warmTransfer() scenario {
	return scenario{
		name:   "warm transfer to a monitored agent",
		rules:  defaultRules,
		events: transferTo(bob).events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg},
			{after: 10, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: bob, call: customerLeg, conf: conferenceID},
		},
		contact: transferContact(bob, true),
		resumes: warmResumes,
	}
}

// warmResumes is the exception of the package guarantee, worked out from
// the arrival order alone: the stream stops too early when Alice's accept
// and an end of hers (wrap-up or completion) arrive before Bob's accept; it
// resumes for Bob once both his accept and Alice's wrap-up (which proves
// they overlapped) are in, if nothing that ends his part came first.
func warmResumes(order []int) bool {
	pos := firstPositions(order)
	accA, accB, wrapA := pos[2], pos[6], pos[8]
	aLeft := min(pos[8], pos[9])
	bLeft := min(pos[10], pos[11], pos[12], pos[13])
	return accA < accB && aLeft < accB && max(accB, wrapA) < bLeft
}

// firstPositions maps an event index to where it first arrives in order.
func firstPositions(order []int) map[int]int {
	pos := make(map[int]int)
	for i := len(order) - 1; i >= 0; i-- {
		pos[order[i]] = i
	}
	return pos
}

func unmonitoredTransfer() scenario {
	return scenario{
		name:   "transfer to an unmonitored agent",
		rules:  defaultRules,
		events: transferTo(carol).events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg},
			{after: 8, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: alice, call: customerLeg, conf: conferenceID},
		},
		contact: transferContact(carol, false),
	}
}

func externalTransfer() scenario {
	tr := callrec.Transfer{Mode: "COLD", To: externalNum}
	c := inbound().
		taskEv(taskCreated, 0).
		res(resCreated, alice, resA, 1).
		res(resAccepted, alice, resA, 8).
		conference(9, both).
		transfer(xferInit, 60, alice, resA, tr).
		transfer(xferDone, 65, alice, resA, tr).
		res(resWrapup, alice, resA, 66).
		res(resCompleted, alice, resA, 80).
		taskEv(taskWrapup, 66).
		taskEv(taskCompleted, 80)
	want := inboundContact(callrec.ContactEnded, 4, 80,
		conn(resA, alice, true, callrec.ConnEnded, 3, [4]int{1, 8, 66, 80}, ""))
	want.Transfers = []callrec.Transfer{{
		SID: transferSID, Mode: "COLD", To: externalNum, Status: "completed",
		InitiatingWorkerSID: alice.sid, InitiatingReservationSID: resA,
	}}
	return scenario{
		name:   "transfer to an external number",
		rules:  defaultRules,
		events: c.events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg},
			{after: 5, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonExternal, agent: alice, call: customerLeg, conf: conferenceID},
		},
		contact: want,
	}
}

// coldTransfer: Alice sends the call to another queue and leaves; the
// customer waits alone; Bob answers: a second generation.
func coldTransfer() scenario {
	tr := callrec.Transfer{Mode: "COLD", Type: "QUEUE", To: queue2SID}
	c := inbound().
		taskEv(taskCreated, 0).                  // 0
		res(resCreated, alice, resA, 1).         // 1
		res(resAccepted, alice, resA, 8).        // 2
		conference(9, both).                     // 3
		moveQueue(queue2SID, "Escalations").     //
		transfer(xferInit, 60, alice, resA, tr). // 4
		res(resWrapup, alice, resA, 61).         // 5
		res(resCreated, bob, resB, 70).          // 6
		res(resAccepted, bob, resB, 75).         // 7
		transfer(xferDone, 75, alice, resA, tr). // 8
		res(resCompleted, alice, resA, 80).      // 9
		res(resWrapup, bob, resB, 200).          // 10
		res(resCompleted, bob, resB, 230).       // 11
		taskEv(taskWrapup, 200).                 // 12
		taskEv(taskCompleted, 230)               // 13
	want := inboundContact(callrec.ContactEnded, 6, 230,
		conn(resA, alice, true, callrec.ConnEnded, 3, [4]int{1, 8, 61, 80}, ""),
		conn(resB, bob, true, callrec.ConnEnded, 3, [4]int{70, 75, 200, 230}, ""))
	want.QueueSID, want.QueueName = queue2SID, "Escalations"
	want.Transfers = []callrec.Transfer{{
		SID: transferSID, Mode: "COLD", Type: "QUEUE", To: queue2SID, Status: "completed",
		InitiatingWorkerSID: alice.sid, InitiatingReservationSID: resA,
	}}
	return scenario{
		name:   "cold transfer through a queue to a monitored agent",
		rules:  defaultRules,
		events: c.events,
		want: []wantDecision{
			{after: 2, kind: tracker.StartStream, gen: 1, reason: tracker.ReasonAnswered, agent: alice, call: customerLeg},
			{after: 5, kind: tracker.StopStream, gen: 1, reason: tracker.ReasonAgentLeft, agent: alice, call: customerLeg, conf: conferenceID},
			{after: 7, kind: tracker.StartStream, gen: 2, reason: tracker.ReasonAnswered, agent: bob, call: customerLeg, conf: conferenceID},
			{after: 10, kind: tracker.StopStream, gen: 2, reason: tracker.ReasonAgentLeft, agent: bob, call: customerLeg, conf: conferenceID},
		},
		contact: want,
	}
}
