package tracker

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// The recording plan is derived from a record's facts only. Each monitored
// agent who answered contributes the interval of their talk: from the
// accept to the earliest of their reservation's wrap-up, completion or late
// decline, a hand-off of the call to an external party they initiated, or
// the end of the task. Overlapping intervals merge into segments (touching
// ones do not: the stream of a segment stops when its last agent leaves);
// each segment is one stream generation. A segment is open while
// one of its intervals has no known end. A warm transfer between monitored
// agents is one segment (the intervals overlap); a cold one, with the
// customer alone in between, is two.

// interval is one monitored agent's talk.
type interval struct {
	res   string
	start time.Time
	end   time.Time
	open  bool
	sure  bool   // the end is the agent's wrap-up: no later event moves it
	cause string // why it ended (a Reason…)
}

// segment is a maximal run of overlapping intervals.
type segment struct {
	start, end time.Time
	open       bool
	opener     string // reservation with the earliest start
	live       string // earliest-starting open reservation, if open
	joiner     string // earliest open reservation that answered while a departed one surely was on
	sureEnd    time.Time
	closer     string // reservation ending last, if closed
	cause      string // why the segment ended, if closed
}

// plan returns the segments of r in time order: none while the customer
// leg is unknown or when the call is internal between monitored agents.
func (s *State) plan(r *record) []segment {
	if r.customerCall() == "" && r.Conference.S == "" {
		return nil
	}
	if s.internalBetweenMonitored(r) {
		return nil
	}
	taskEnd, taskCause, taskEnded := r.taskEnd()
	caps := r.externalCaps()
	var ivs []interval
	for _, res := range sortedKeys(r.Conns) {
		c := r.Conns[res]
		if !c.Monitored || !c.Answered.Set {
			continue
		}
		iv := interval{res: res, start: c.Answered.At, open: true, sure: c.WrapUp.Set}
		end := func(st stamp, cause string) {
			if st.Set && (iv.open || st.At.Before(iv.end)) {
				iv.end, iv.open, iv.cause = st.At, false, cause
			}
		}
		end(c.WrapUp, ReasonAgentLeft)
		end(c.Completed, ReasonAgentLeft)
		end(c.Declined, ReasonAgentLeft)
		end(caps[res], ReasonExternal)
		end(stamp{Set: taskEnded, At: taskEnd}, taskCause)
		if !iv.open && iv.end.Before(iv.start) {
			continue // accepted after the call ended: nothing to record
		}
		ivs = append(ivs, iv)
	}
	slices.SortFunc(ivs, func(a, b interval) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return strings.Compare(a.res, b.res)
	})
	var segs []segment
	for _, iv := range ivs {
		if n := len(segs); n > 0 && (segs[n-1].open || iv.start.Before(segs[n-1].end)) {
			segs[n-1].add(iv)
			continue
		}
		segs = append(segs, segment{start: iv.start, opener: iv.res})
		segs[len(segs)-1].add(iv)
	}
	return segs
}

// add merges iv into the segment (intervals come in start order).
func (g *segment) add(iv interval) {
	if iv.open {
		if !g.open {
			g.live = iv.res
		}
		if g.joiner == "" && iv.start.Before(g.sureEnd) {
			g.joiner = iv.res
		}
		g.open = true
		g.closer, g.cause = "", ""
		return
	}
	if iv.sure && iv.end.After(g.sureEnd) {
		g.sureEnd = iv.end
	}
	if g.open {
		return
	}
	if g.closer == "" || iv.end.After(g.end) || (iv.end.Equal(g.end) && iv.res > g.closer) {
		g.end, g.closer, g.cause = iv.end, iv.res, iv.cause
	}
}

// customerCall is the customer's call leg: call_sid, or the conference's
// customer participant.
func (r *record) customerCall() string {
	if r.CallSID.S != "" {
		return r.CallSID.S
	}
	return r.Participant["customer"].S
}

// taskEnd is when the task stopped talking: the earliest of its wrap-up,
// completion, cancellation or deletion.
func (r *record) taskEnd() (time.Time, string, bool) {
	var best stamp
	var cause string
	for _, e := range []struct {
		st    stamp
		cause string
	}{
		{r.Wrapup, ReasonTaskWrapup},
		{r.Completed, ReasonTaskCompleted},
		{r.Canceled, ReasonTaskCanceled},
		{r.Deleted, ReasonTaskDeleted},
	} {
		if e.st.Set && (!best.Set || e.st.At.Before(best.At)) {
			best, cause = e.st, e.cause
		}
	}
	return best.At, cause, best.Set
}

// externalCaps returns, per reservation, when the call was handed to an
// external party by a transfer that reservation (or its worker) initiated.
// A completed external transfer naming no initiator caps every connection
// answered before it.
func (r *record) externalCaps() map[string]stamp {
	caps := make(map[string]stamp)
	for _, x := range r.Transfers {
		if !x.Completed.Set || !isExternal(x.Type.S, x.To.S) {
			continue
		}
		for res, c := range r.Conns {
			var hit bool
			switch {
			case x.InitRes.S != "":
				hit = res == x.InitRes.S
			case x.InitWork.S != "":
				hit = c.Worker.S == x.InitWork.S
			default:
				hit = c.Answered.Set && !c.Answered.At.After(x.Completed.At)
			}
			if hit {
				st := caps[res]
				st.offer(x.Completed.At)
				caps[res] = st
			}
		}
	}
	return caps
}

// isExternal reports whether a transfer goes outside the switch: its type
// is neither WORKER nor QUEUE, or, without a type, its target is not a
// worker (WK…) or queue (WQ…) SID (e.g. a phone number or SIP address).
func isExternal(typ, to string) bool {
	switch strings.ToUpper(typ) {
	case "WORKER", "QUEUE":
		return false
	case "":
		return to != "" && !strings.HasPrefix(to, "WK") && !strings.HasPrefix(to, "WQ")
	}
	return true
}

// internalBetweenMonitored reports whether the call is between two
// monitored agents, which is never recorded. The heuristic: both ends of
// the call (task attributes "from" and "to", or "targetWorker" when "to" is
// absent) are agents, and both are monitored. An end is an agent when it is
// a Voice SDK client ("client:<identity>", as Flex dials agents), or, when
// the attributes mark the call internal ("type", "direction" or "internal"),
// any end that is not a phone number (an identity, email or worker SID).
// The far end is known only by identity, so it counts as monitored only
// through MonitorAll or Agents (see Rules): with attribute rules such calls
// are recorded, erring on the side of recording.
func (s *State) internalBetweenMonitored(r *record) bool {
	flagged := strings.EqualFold(r.Type.S, "internal") ||
		strings.EqualFold(r.Direction.S, "internal") ||
		truthy(r.Internal.S)
	to := r.To.S
	if to == "" {
		to = r.Target.S
	}
	for _, end := range []string{r.From.S, to} {
		id, ok := agentIdentity(end, flagged)
		if !ok || !s.rules.monitoredIdentity(id) {
			return false
		}
	}
	return true
}

// agentIdentity returns the agent identity of a call end.
func agentIdentity(end string, flagged bool) (string, bool) {
	end = strings.TrimSpace(end)
	if id, ok := strings.CutPrefix(end, "client:"); ok {
		return decodeIdentity(id), id != ""
	}
	if !flagged || end == "" || end[0] == '+' || (end[0] >= '0' && end[0] <= '9') ||
		strings.HasPrefix(end, "sip:") {
		return "", false
	}
	return end, true
}

// decodeIdentity undoes Flex's client identity encoding ("_40" for "@",
// "_2E" for ".", any "_HH" hex escape).
func decodeIdentity(id string) string {
	if !strings.Contains(id, "_") {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if id[i] == '_' && i+3 <= len(id) {
			if v, err := strconv.ParseUint(id[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(id[i])
	}
	return b.String()
}

func truthy(s string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err == nil && b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
