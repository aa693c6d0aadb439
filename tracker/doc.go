// Package tracker keeps call state from TaskRouter events and decides when
// to start and stop recording a call. It is a pure, deterministic state
// machine: no I/O, no goroutines, no clock (times come from the events).
// The Stream Manager carries out its decisions (Start/Stop Stream API).
//
// # What is recorded
//
// The recording follows the customer's call leg, one stream per contact (a
// Flex task), kept across transfers. A stream starts when the first
// monitored agent (see Rules) answers and the customer leg (call SID, or at
// least the conference) is known; it stops when the last monitored agent
// leaves, the call is handed to an external party, or the task ends. A warm
// transfer between monitored agents keeps the stream; a monitored agent
// answering after the stream stopped starts a new generation
// ("rec-<task>-2"). Calls between two monitored agents are never recorded
// (the heuristic is documented on internalBetweenMonitored in plan.go).
//
// # Order independence
//
// Events are at-least-once and in any order. The state is a set of facts
// merged by order-free rules (earliest time, highest version, furthest
// lifecycle point), and the decisions follow from a recording plan derived
// from those facts: the talk intervals of monitored agents, merged into
// segments, one generation each (see plan.go). For any permutation of a
// contact's events, with any duplicates:
//
//  1. The final Contact is identical.
//  2. The decisions are well formed: no Key twice; generations numbered 1, 2,
//     … in order; each StopStream after the StartStream of its generation; at
//     most one generation running at a time; none running once the task's
//     end, or the departure of every monitored agent known, is in; no start
//     but a late pair (below) once the task's end is in; a repeated event
//     yields no decision.
//  3. The multiset of decision Keys is identical — one generation per
//     segment of the plan of all the events, each started and stopped —
//     unless the order made a stream stop "prematurely": its last known
//     monitored agent left while another one, whose accept had not arrived
//     yet, was already on the call (in real time that accept came earlier by
//     at least the length of the overlap). Then, once the accept and the
//     departed agent's wrap-up (which proves the overlap) are in, and nothing
//     has ended the remaining agent's part, the stream resumes as a new
//     generation (ReasonResumed): one more generation than the real order, per
//     occurrence.
//     Likewise, with three or more monitored agents, a late agent bridging two
//     segments that were both started costs one more generation. In every
//     other premature case nothing is emitted and the multiset is unchanged,
//     at the price of not recording the rest of that agent's talk.
//
// Point 3 cannot hold in every order without losing audio: when a stream's
// last known monitored agent leaves, the tracker must stop it (it cannot
// tell a warm transfer whose accept is late from a call handed to an
// unmonitored party), and when the late accept then shows an agent still
// talking, the only choices are a new generation or a recording gap. The
// tracker resumes only when the overlap is proven and prefers the gap
// otherwise.
//
// Segments learned only once over (e.g. reservation.accepted arriving after
// the reservation's wrapup) are emitted as a late pair, a StartStream
// immediately followed by its StopStream (ReasonLate), so that point 3
// holds; Effective removes such pairs before calling Twilio.
//
// # Retention
//
// The Service keeps an ended contact for a grace period after its last
// event and then retires it, leaving a tombstone that makes later events of
// its task be ignored (see retention.go).
package tracker
