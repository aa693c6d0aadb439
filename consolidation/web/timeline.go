package web

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"callrec"
	"callrec/consolidation/store"
)

// TimelineEntry is one event of a call, placed on its recording when one
// covers it. An entry that lasts (a restart gap) has an end.
type TimelineEntry struct {
	At         time.Time    `json:"at"`
	End        time.Time    `json:"end,omitzero"`
	DurationMS int64        `json:"duration_ms,omitempty"`
	Kind       string       `json:"kind"`
	Label      string       `json:"label"`
	Agent      string       `json:"agent,omitempty"`
	INUM       callrec.INUM `json:"inum,omitempty"`
	OffsetMS   *int64       `json:"offset_ms,omitempty"`
}

// Timeline entry kinds added by the recordings' streams (the others are in
// the OpenAPI description).
const (
	KindRestartGap = "restart_gap" // audio lost between a failed stream and its replacement
	KindCopyJoined = "copy_joined" // a stream of a dual-stream pair joined the merged recording
	KindCopyEnded  = "copy_ended"  // a stream of a pair ended other than by Twilio's stop
)

// alternateINUMs lists the recordings of replicas other than the one to
// play: events are placed on the preferred replica first.
func alternateINUMs(in *store.Interaction) map[callrec.INUM]bool {
	out := map[callrec.INUM]bool{}
	for _, set := range in.Replicas {
		for _, rp := range set.Replicas {
			if !slices.Contains(rp.INUMs, set.Preferred) {
				for _, n := range rp.INUMs {
					out[n] = true
				}
			}
		}
	}
	return out
}

// replicaNote says, for a recording of an alternate replica, which replica
// the call plays ("" for any other recording).
func replicaNote(in *store.Interaction, r *callrec.Recording) string {
	for _, set := range in.Replicas {
		mine, pref := 0, 0
		for _, rp := range set.Replicas {
			if slices.Contains(rp.INUMs, r.INUM) {
				mine = rp.Replica
			}
			if slices.Contains(rp.INUMs, set.Preferred) {
				pref = rp.Replica
			}
		}
		if mine != 0 && mine != pref {
			return fmt.Sprintf("; the call plays replica %d (%s)", pref, set.Preferred)
		}
	}
	return ""
}

// fmtMS writes a duration in ms as seconds with milliseconds.
func fmtMS(ms int64) string {
	if ms < 0 {
		return "-" + fmtMS(-ms)
	}
	return fmt.Sprintf("%d.%03d s", ms/1000, ms%1000)
}

// timeline lists a call's events in time order: the agents' connections,
// transfers, each recording's start, stop, gaps, failover and restart, the
// copies of merged recordings, and the audio lost between a failed stream
// and its replacement.
func timeline(in *store.Interaction, c *callrec.Contact, recs []*callrec.Recording) []TimelineEntry {
	out := []TimelineEntry{}
	alt := alternateINUMs(in)
	place := func(e TimelineEntry) {
		if e.At.IsZero() {
			return
		}
		// The recording to play first; a replica's twin only when the
		// preferred one is unavailable.
		for pass := 0; pass < 2 && e.INUM == ""; pass++ {
			for _, r := range recs {
				if alt[r.INUM] != (pass == 1) {
					continue
				}
				end := r.StoppedAt
				if end.IsZero() {
					end = r.UpdatedAt
				}
				if !e.At.Before(r.StartedAt) && !e.At.After(end) {
					e.INUM = r.INUM
					off := e.At.Sub(r.StartedAt).Milliseconds()
					e.OffsetMS = &off
					break
				}
			}
		}
		out = append(out, e)
	}
	if c != nil {
		contactTimeline(c, place)
	}
	for _, r := range recs {
		out = append(out, recordingTimeline(in, r)...)
	}
	for _, g := range in.Gaps {
		e := TimelineEntry{At: g.Start, End: g.End, DurationMS: g.DurationMS, Kind: KindRestartGap,
			Label: fmt.Sprintf("No audio for %s: stream %s failed and its replacement %s started; recording %s ends, %s follows",
				fmtMS(g.DurationMS), g.FromStreamSID, g.ToStreamSID, g.FromINUM, g.ToINUM)}
		for _, r := range recs {
			if r.INUM == g.FromINUM {
				end := r.Audio.DurationMS
				e.INUM, e.OffsetMS = r.INUM, &end
			}
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b TimelineEntry) int { return a.At.Compare(b.At) })
	return out
}

// contactTimeline gives the contact's events to place.
func contactTimeline(c *callrec.Contact, place func(TimelineEntry)) {
	for _, x := range c.Connections {
		who := x.AgentExtension
		place(TimelineEntry{At: x.OfferedAt, Kind: "offered", Label: "Offered to " + who, Agent: who})
		if x.Status == callrec.ConnDeclined {
			at := x.EndedAt
			if at.IsZero() {
				at = x.OfferedAt
			}
			place(TimelineEntry{At: at, Kind: "declined", Label: fmt.Sprintf("%s did not take the call (%s)", who, x.EndReason), Agent: who})
		}
		mon := ""
		if !x.Monitored {
			mon = " (not monitored: not recorded)"
		}
		place(TimelineEntry{At: x.AnsweredAt, Kind: "answered", Label: who + " answered" + mon, Agent: who})
		place(TimelineEntry{At: x.WrapUpAt, Kind: "wrapup", Label: who + " left the call (wrap-up)", Agent: who})
		if x.Status == callrec.ConnEnded {
			place(TimelineEntry{At: x.EndedAt, Kind: "ended", Label: who + " completed the task", Agent: who})
		}
	}
	for _, t := range c.Transfers {
		to := t.To
		for _, x := range c.Connections {
			if x.WorkerSID != "" && x.WorkerSID == t.To && x.AgentExtension != "" {
				to = x.AgentExtension
			}
		}
		place(TimelineEntry{At: transferTime(c, t), Kind: "transfer",
			Label: fmt.Sprintf("%s %s transfer to %s: %s", strings.ToLower(t.Mode), strings.ToLower(t.Type), to, t.Status)})
	}
	if c.EndedAt.After(time.Time{}) {
		place(TimelineEntry{At: c.EndedAt, Kind: "ended", Label: "Call ended (" + string(c.Status) + ")"})
	}
}

// recordingTimeline lists one recording's events, in its audio time.
func recordingTimeline(in *store.Interaction, r *callrec.Recording) []TimelineEntry {
	var out []TimelineEntry
	zero := int64(0)
	agent := r.Stream.CustomParameters["agent"]
	what := "Recording " + string(r.INUM)
	if r.Stream.Replica > 0 {
		what += fmt.Sprintf(" (replica %d)", r.Stream.Replica)
	}
	note := replicaNote(in, r)
	switch {
	case r.PreviousINUM != "":
		out = append(out, TimelineEntry{At: r.StartedAt, Kind: "failover", INUM: r.INUM, OffsetMS: &zero, Agent: agent,
			Label: fmt.Sprintf("%s continues on recorder %d after recording %s was lost", what, r.Node, r.PreviousINUM)})
	case r.Stream.CustomParameters["restart_of"] != "":
		out = append(out, TimelineEntry{At: r.StartedAt, Kind: "restart", INUM: r.INUM, OffsetMS: &zero, Agent: agent,
			Label: fmt.Sprintf("Replacement stream started after stream %s failed: %s", r.Stream.CustomParameters["restart_of"], what)})
	default:
		out = append(out, TimelineEntry{At: r.StartedAt, Kind: "recording_started", INUM: r.INUM, OffsetMS: &zero, Agent: agent,
			Label: fmt.Sprintf("%s started on recorder %d", what, r.Node)})
	}
	for _, cp := range r.Accounting.Copies {
		stream := fmt.Sprintf("Copy %d (stream %s, adapter %s)", cp.Copy, cp.StreamSID, cp.Adapter)
		if cp.Alignment != callrec.AlignOrigin && !cp.JoinedAt.IsZero() {
			out = append(out, recordingEntry(r, cp.JoinedAt, KindCopyJoined,
				fmt.Sprintf("%s joined the merged recording %s, aligned by %s at %s", stream, r.INUM, cp.Alignment, fmtMS(cp.OffsetMS))))
		}
		if cp.EndReason != "" && cp.EndReason != callrec.EndStop && !cp.EndedAt.IsZero() {
			out = append(out, recordingEntry(r, cp.EndedAt, KindCopyEnded,
				fmt.Sprintf("%s ended (%s); %d frames received, %d supplied", stream, cp.EndReason, cp.Received, cp.Supplied)))
		}
	}
	for _, tr := range r.Accounting.Tracks {
		for _, g := range tr.Gaps {
			off := g.StartMS - r.Audio.OffsetMS
			missing := fmt.Sprintf("%d frames", g.Frames)
			if g.Frames == 0 {
				missing = fmt.Sprintf("%d ms", g.EndMS-g.StartMS)
			}
			out = append(out, TimelineEntry{At: r.StartedAt.Add(time.Duration(off) * time.Millisecond), Kind: "gap", INUM: r.INUM, OffsetMS: &off,
				Label: fmt.Sprintf("Gap on the %s track: %s missing (%s)", trackName(tr.Track), missing, g.Cause)})
		}
	}
	if !r.StoppedAt.IsZero() {
		end := r.Audio.DurationMS
		kind, label := "recording_stopped", fmt.Sprintf("%s stopped (%s)", what, r.EndReason)
		if r.State == callrec.StateInterrupted {
			kind, label = "interrupted", fmt.Sprintf("%s interrupted (%s)%s", what, r.EndReason, note)
		}
		out = append(out, TimelineEntry{At: r.StoppedAt, Kind: kind, INUM: r.INUM, OffsetMS: &end, Label: label})
	}
	return out
}

// recordingEntry is an event of recording r at a wall-clock time, placed in
// its audio when it falls within it.
func recordingEntry(r *callrec.Recording, at time.Time, kind, label string) TimelineEntry {
	e := TimelineEntry{At: at, Kind: kind, Label: label, INUM: r.INUM}
	if off := at.Sub(r.StartedAt).Milliseconds(); off >= 0 {
		e.OffsetMS = &off
	}
	return e
}

// transferTime estimates when a transfer happened: when the first agent
// connection after the initiator's answer was offered (events carry no
// transfer time of their own).
func transferTime(c *callrec.Contact, t callrec.Transfer) time.Time {
	var answered time.Time
	for _, x := range c.Connections {
		if x.ReservationSID == t.InitiatingReservationSID {
			answered = x.AnsweredAt
		}
	}
	var at time.Time
	for _, x := range c.Connections {
		if x.ReservationSID != t.InitiatingReservationSID && x.OfferedAt.After(answered) && (at.IsZero() || x.OfferedAt.Before(at)) {
			at = x.OfferedAt
		}
	}
	return at
}

// trackName names a track for people: inbound is the customer.
func trackName(t string) string {
	switch t {
	case "inbound":
		return "customer"
	case "outbound":
		return "agent"
	}
	return t
}
