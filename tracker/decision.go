package tracker

import "strconv"

// DecisionKind says what the Stream Manager must do.
type DecisionKind string

// Decision kinds.
const (
	StartStream DecisionKind = "StartStream" // fork the customer leg's audio to us (Start Stream API)
	StopStream  DecisionKind = "StopStream"  // stop that fork (Stop Stream API, Status=stopped)
)

// Reasons carried by decisions (Decision.Reason).
const (
	// ReasonAnswered: a monitored agent answered; the contact had no stream.
	ReasonAnswered = "monitored agent answered"
	// ReasonResumed: a monitored agent is on the call although its stream
	// was already stopped: a late event showed an agent whose talk overlaps
	// the stopped stream. A new generation covers the rest of the call.
	ReasonResumed = "monitored agent still on the call after its stream stopped (late event)"
	// ReasonLate marks both decisions of a late pair: a recording segment
	// that was already over when the tracker learned of it. See Effective.
	ReasonLate = "late: recording segment already over when learned"
	// ReasonAgentLeft: the last monitored agent on the call left (wrap-up or
	// completion of their reservation).
	ReasonAgentLeft = "last monitored agent left"
	// ReasonExternal: the call was handed to a party outside the switch and
	// no monitored agent remains.
	ReasonExternal = "transferred to an external party"
	// ReasonTaskWrapup, ReasonTaskCompleted, ReasonTaskCanceled,
	// ReasonTaskDeleted: the task ended while the stream ran.
	ReasonTaskWrapup    = "task wrapup"
	ReasonTaskCompleted = "task completed"
	ReasonTaskCanceled  = "task canceled"
	ReasonTaskDeleted   = "task deleted"
	// ReasonNotWanted: the recording is no longer wanted (the task
	// attributes now mark an internal call between monitored agents, or the
	// rules changed after a restore).
	ReasonNotWanted = "recording no longer wanted"
)

// Decision is an order for the Stream Manager: start or stop the stream of
// one contact. A contact has at most one stream running at a time; its
// generations are numbered from 1.
type Decision struct {
	Kind           DecisionKind `json:"kind"`
	TaskSID        string       `json:"task_sid"`
	ReservationSID string       `json:"reservation_sid,omitempty"` // the agent's reservation the decision is about
	WorkerSID      string       `json:"worker_sid,omitempty"`
	AgentExtension string       `json:"agent_extension,omitempty"`
	CallSID        string       `json:"call_sid,omitempty"`       // the customer leg; empty: look it up in ConferenceSID
	ConferenceSID  string       `json:"conference_sid,omitempty"` // the Flex conference, when known
	// Name is the stream name: "rec-" + task SID for generation 1,
	// "rec-<task SID>-<generation>" for later ones. Unique per call.
	Name   string `json:"name"`
	Reason string `json:"reason"`
	// Key is the idempotency key: Kind + ":" + Name + ":" + generation. The
	// tracker never emits the same key twice.
	Key string `json:"key"`
}

// streamName is the Name of a contact's stream generation.
func streamName(taskSID string, gen int) string {
	if gen <= 1 {
		return "rec-" + taskSID
	}
	return "rec-" + taskSID + "-" + strconv.Itoa(gen)
}

// decisionKey is the idempotency key of a decision.
func decisionKey(kind DecisionKind, name string, gen int) string {
	return string(kind) + ":" + name + ":" + strconv.Itoa(gen)
}

// Effective returns ds without its late pairs: a StartStream followed, in
// the same slice, by the StopStream of the same Name. Apply emits such a
// pair (both with ReasonLate) when it learns of a recording segment that is
// already over, e.g. reservation.accepted arriving after the same
// reservation's wrapup; the pair keeps the set of decision keys independent
// of the order of events, while the Stream Manager should not call Twilio
// for it (it may still mark both keys done). Other decisions are kept in
// order.
func Effective(ds []Decision) []Decision {
	drop := make(map[int]bool)
	for i, d := range ds {
		if d.Kind != StartStream {
			continue
		}
		for j := i + 1; j < len(ds); j++ {
			if ds[j].Kind == StopStream && ds[j].Name == d.Name && !drop[j] {
				drop[i], drop[j] = true, true
				break
			}
		}
	}
	out := make([]Decision, 0, len(ds)-len(drop))
	for i, d := range ds {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out
}
