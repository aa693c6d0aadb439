package tracker

import (
	"slices"
	"strings"

	"callrec"
)

// State is the tracker's state: one contact per task. It is not safe for
// concurrent use.
type State struct {
	rules    Rules
	contacts map[string]*record
}

// emitState is what a contact's decisions have done so far.
type emitState struct {
	Gen     int `json:"gen,omitempty"`     // generations started
	Covered int `json:"covered,omitempty"` // plan segments accounted for
	Running int `json:"running,omitempty"` // the generation started and not stopped, 0 if none
}

// NewState returns an empty state that monitors agents by rules.
func NewState(rules Rules) *State {
	return &State{rules: rules, contacts: make(map[string]*record)}
}

// Apply takes one event into the state and returns the decisions it leads
// to, in order (often none). Events without a task, and tasks of another
// channel than voice, are ignored.
func (s *State) Apply(ev callrec.CTIEvent) []Decision {
	if !applies(&ev) {
		return nil
	}
	r := s.contacts[ev.TaskSID]
	if r == nil {
		r = newRecord(ev.TaskSID)
		s.contacts[ev.TaskSID] = r
	}
	r.apply(&ev, s.rules)
	return s.reconcile(r)
}

// applies reports whether Apply takes ev: it has a task, of the voice
// channel (or of none given).
func applies(ev *callrec.CTIEvent) bool {
	return ev.TaskSID != "" && (ev.TaskChannel == "" || strings.EqualFold(ev.TaskChannel, "voice"))
}

// reconcile brings the contact's streams in line with its plan: the open
// tail segment (if any) has a running generation; every other segment is
// accounted for by a stopped one.
func (s *State) reconcile(r *record) []Decision {
	segs := s.plan(r)
	n := len(segs)
	wantOpen := n > 0 && segs[n-1].open
	e := &r.Emit
	fresh := max(0, n-e.Covered) // segments not yet accounted for
	var out []Decision
	switch {
	case e.Running != 0 && wantOpen:
		// The running generation stays with the open tail; newly learned
		// segments before it are over.
		out = s.latePairs(r, segs, n-1-fresh, n-1, out)
	case e.Running != 0:
		var last *segment
		if n > 0 {
			last = &segs[n-1]
		}
		out = append(out, s.stop(r, last, e.Running))
		e.Running = 0
		out = s.latePairs(r, segs, n-1-fresh, n-1, out)
	case wantOpen && fresh > 0:
		out = s.latePairs(r, segs, n-fresh, n-1, out)
		e.Gen++
		e.Running = e.Gen
		out = append(out, s.start(r, &segs[n-1], e.Gen, ReasonAnswered))
	case wantOpen && segs[n-1].joiner != "":
		// The stream of this segment was stopped, yet a monitored agent is
		// still on the call who answered while another one, now gone, surely
		// was (a warm transfer whose events came out of order): resume.
		e.Gen++
		e.Running = e.Gen
		d := r.decision(StartStream, segs[n-1].joiner, e.Gen, ReasonResumed)
		out = append(out, d)
	case wantOpen:
		// The stream of this segment was stopped, and no agent still on the
		// call (as far as known) surely overlapped a departed one: their
		// talk may have ended before the others' (a cold transfer whose
		// wrap-up is still to come). Do not restart on that guess; a later
		// wrap-up proving the overlap resumes, one proving a gap starts the
		// next generation.
	default:
		out = s.latePairs(r, segs, n-fresh, n, out)
	}
	e.Covered = max(e.Covered, n)
	return out
}

// latePairs emits a late pair for each of segs[from:to].
func (s *State) latePairs(r *record, segs []segment, from, to int, out []Decision) []Decision {
	for i := max(from, 0); i < to; i++ {
		r.Emit.Gen++
		out = append(out, s.start(r, &segs[i], r.Emit.Gen, ReasonLate))
		out = append(out, s.stop(r, &segs[i], r.Emit.Gen))
		out[len(out)-1].Reason = ReasonLate
	}
	return out
}

func (s *State) start(r *record, g *segment, gen int, reason string) Decision {
	res := g.opener
	if g.open {
		res = g.live
	}
	return r.decision(StartStream, res, gen, reason)
}

func (s *State) stop(r *record, g *segment, gen int) Decision {
	if g == nil {
		return r.decision(StopStream, "", gen, ReasonNotWanted)
	}
	return r.decision(StopStream, g.closer, gen, g.cause)
}

func (r *record) decision(kind DecisionKind, res string, gen int, reason string) Decision {
	name := streamName(r.TaskSID, gen)
	d := Decision{
		Kind:           kind,
		TaskSID:        r.TaskSID,
		ReservationSID: res,
		CallSID:        r.customerCall(),
		ConferenceSID:  r.Conference.S,
		Name:           name,
		Reason:         reason,
		Key:            decisionKey(kind, name, gen),
	}
	if c := r.Conns[res]; c != nil {
		d.WorkerSID, d.AgentExtension = c.Worker.S, c.Agent.S
	}
	return d
}

// Contact returns a copy of the contact of a task.
func (s *State) Contact(taskSID string) (callrec.Contact, bool) {
	r := s.contacts[taskSID]
	if r == nil {
		return callrec.Contact{}, false
	}
	return s.contactOf(r), true
}

// contactOf is a record's contact with what the rules say of the whole
// call.
func (s *State) contactOf(r *record) callrec.Contact {
	c := r.contact()
	if s.internalBetweenMonitored(r) {
		c.NotRecorded = NotRecordedInternal
	}
	return c
}

// NotRecordedInternal is Contact.NotRecorded for a call between two
// monitored agents.
const NotRecordedInternal = "call between two monitored agents"

// Contacts returns copies of all contacts, oldest first (by creation time,
// then task SID).
func (s *State) Contacts() []callrec.Contact {
	out := make([]callrec.Contact, 0, len(s.contacts))
	for _, r := range s.contacts {
		out = append(out, s.contactOf(r))
	}
	slices.SortFunc(out, func(a, b callrec.Contact) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.TaskSID, b.TaskSID)
	})
	return out
}

// Forget drops a task's contact, e.g. a finished one after its retention.
// The caller should keep contacts longer than events can be redelivered
// (Event Streams retries for hours), and refuse events of forgotten tasks
// (the Service keeps tombstones, see retention.go): an event of a
// forgotten task starts a fresh contact, and a late reservation.accepted
// could then start a stream on a call that has long ended (the Stream
// Manager would get Twilio's "call not in progress" and drop it).
func (s *State) Forget(taskSID string) {
	delete(s.contacts, taskSID)
}
