package tracker

import (
	"slices"
	"strings"
	"time"

	"callrec"
)

// contact derives the Contact from the facts (a fresh value sharing no
// memory with the state).
func (r *record) contact() callrec.Contact {
	c := callrec.Contact{
		TaskSID:       r.TaskSID,
		AccountSID:    r.Account.S,
		WorkspaceSID:  r.Workspace.S,
		CustomerCall:  r.customerCall(),
		ConferenceSID: r.Conference.S,
		Direction:     r.Direction.S,
		From:          r.From.S,
		To:            r.To.S,
		QueueSID:      r.QueueSID.S,
		QueueName:     r.QueueName.S,
		TaskVersion:   r.TaskVersion,
		CreatedAt:     r.First.At,
		Connections:   make([]callrec.Connection, 0, len(r.Conns)),
	}
	if len(r.Participant) > 0 {
		c.Participants = make(map[string]string, len(r.Participant))
		for label, p := range r.Participant {
			c.Participants[label] = p.S
		}
	}
	answered, active := false, false
	for res, f := range r.Conns {
		conn := f.connection(res)
		answered = answered || f.answered()
		active = active || conn.Status == callrec.ConnActive
		c.Connections = append(c.Connections, conn)
	}
	slices.SortFunc(c.Connections, func(a, b callrec.Connection) int {
		if c := firstTime(a).Compare(firstTime(b)); c != 0 {
			return c
		}
		return strings.Compare(a.ReservationSID, b.ReservationSID)
	})
	c.Transfers = r.transfers()
	c.Status, c.EndedAt = r.status(answered, active)
	return c
}

// status derives the contact status: a task-level end first, then the
// connections.
func (r *record) status(answered, active bool) (callrec.ContactStatus, time.Time) {
	ended := callrec.ContactEnded
	if !answered {
		ended = callrec.ContactAbandoned
	}
	switch {
	case r.Completed.Set:
		return callrec.ContactEnded, r.Completed.At
	case r.Canceled.Set:
		return ended, r.Canceled.At
	case r.Deleted.Set:
		return ended, r.Deleted.At
	case r.Wrapup.Set:
		return callrec.ContactWrapUp, time.Time{}
	case active:
		return callrec.ContactActive, time.Time{}
	case answered:
		return callrec.ContactWrapUp, time.Time{}
	}
	return callrec.ContactQueued, time.Time{}
}

// answered reports whether the reservation was accepted (its accept, wrapup
// or completion was seen).
func (f *connFacts) answered() bool {
	return f.Answered.Set || f.WrapUp.Set || f.Completed.Set
}

// connection derives a Connection. The status is the furthest point of the
// reservation's lifecycle seen, Alerting < Active < WrapUp < Ended, with
// Declined reachable only from Alerting: the lifecycle is a chain, so this
// agrees with reservation_version order on every valid reservation, and
// unlike a version comparison it is a total order even when some events
// lack the version.
func (f *connFacts) connection(res string) callrec.Connection {
	c := callrec.Connection{
		ReservationSID: res,
		WorkerSID:      f.Worker.S,
		AgentExtension: f.Agent.S,
		Team:           f.Team.S,
		Version:        f.Version,
		Monitored:      f.Monitored,
		OfferedAt:      f.Offered.At,
		AnsweredAt:     f.Answered.At,
		WrapUpAt:       f.WrapUp.At,
		EndedAt:        f.Completed.At,
	}
	switch {
	case f.Completed.Set:
		c.Status = callrec.ConnEnded
	case f.WrapUp.Set:
		c.Status = callrec.ConnWrapUp
	case f.Answered.Set:
		c.Status = callrec.ConnActive
	case f.Declined.Set:
		c.Status = callrec.ConnDeclined
		c.EndReason = f.Decline
		c.EndedAt = f.Declined.At
	default:
		c.Status = callrec.ConnAlerting
	}
	return c
}

// firstTime is a connection's earliest known time.
func firstTime(c callrec.Connection) time.Time {
	var first time.Time
	for _, t := range []time.Time{c.OfferedAt, c.AnsweredAt, c.WrapUpAt, c.EndedAt} {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// transfers lists the task's transfers by first sight, then SID.
func (r *record) transfers() []callrec.Transfer {
	if len(r.Transfers) == 0 {
		return nil
	}
	sids := sortedKeys(r.Transfers)
	slices.SortStableFunc(sids, func(a, b string) int {
		return r.Transfers[a].First.At.Compare(r.Transfers[b].First.At)
	})
	out := make([]callrec.Transfer, 0, len(sids))
	for _, sid := range sids {
		x := r.Transfers[sid]
		out = append(out, callrec.Transfer{
			SID:                      sid,
			Mode:                     x.Mode.S,
			Type:                     x.Type.S,
			To:                       x.To.S,
			Status:                   x.Status.S,
			InitiatingWorkerSID:      x.InitWork.S,
			InitiatingReservationSID: x.InitRes.S,
		})
	}
	return out
}
