package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"callrec"
	"callrec/internal/twiliotest"
	"callrec/simulate"
)

// Scenario names one scripted Flex call.
type Scenario string

// The scenarios.
const (
	// Answered: the call queues, Alice is offered it and accepts; she talks
	// with the customer, wraps up and completes.
	Answered Scenario = "answered"
	// RejectedThenAccepted: Alice rejects the offer; Bob accepts it.
	RejectedThenAccepted Scenario = "rejected-then-accepted"
	// AbandonedInQueue: the caller hangs up while the offer to Alice is
	// pending; no agent ever talks.
	AbandonedInQueue Scenario = "abandoned-in-queue"
	// WarmTransfer: Alice transfers the call to Bob (WARM, WORKER); Bob
	// accepts while Alice is still on the call, then Alice leaves and Bob
	// talks on.
	WarmTransfer Scenario = "warm-transfer"
	// ExternalTransfer: Alice hands the call to an external number (COLD)
	// and leaves; the customer talks on with the outside party.
	ExternalTransfer Scenario = "external-transfer"
	// AgentToAgent: Alice calls Bob (Voice SDK client to client): an
	// internal call between two agents.
	AgentToAgent Scenario = "agent-to-agent"
	// DuplicatedReordered: the answered call with every event delivered
	// twice and the events of each phase of the call shuffled (some
	// copies come one phase late), as at-least-once, unordered delivery
	// may do.
	DuplicatedReordered Scenario = "duplicated-reordered"
	// StreamErrorMidCall: the answered call, but halfway through the talk
	// the Media Stream's connection is cut without stop, as a network
	// failure would (the Twilio stand-in then posts stream-error); the
	// recorder is expected to start a replacement stream.
	StreamErrorMidCall Scenario = "stream-error-mid-call"
)

// All lists every scenario.
func All() []Scenario {
	return []Scenario{Answered, RejectedThenAccepted, AbandonedInQueue, WarmTransfer, ExternalTransfer,
		AgentToAgent, DuplicatedReordered, StreamErrorMidCall}
}

// Defaults of Env.
const (
	DefaultTalk   = 2 * time.Second
	DefaultStep   = 100 * time.Millisecond
	DefaultSettle = 5 * time.Second
)

// Env is what a scenario plays against.
type Env struct {
	// Sink receives the CloudEvents (required).
	Sink Sink
	// Twilio is the REST stand-in the recorder calls. Play registers the
	// calls and the conference there before the events that make a
	// recorder start a stream, cuts a stream (StreamErrorMidCall), and
	// hangs the calls up. Nil plays the events only.
	Twilio *simulate.Twilio
	// Account is the account SID; default simulate.DefaultAccountSID.
	Account string
	// AgentPrefix is put in front of the agents' identities (Flex logins
	// such as alice.agent@example.com), so that runs sharing a recorder
	// can tell their agents apart; default none.
	AgentPrefix string
	// Talk is how long agents talk (real time, so audio flows); default
	// DefaultTalk. A warm transfer talks twice as long (each agent).
	Talk time.Duration
	// Step is the pause between consecutive moments of a call (ringing,
	// the conference coming up, a transfer being set up); default
	// DefaultStep.
	Step time.Duration
	// Settle bounds how long Play waits on the recorder before going on:
	// for the streams on the customer's call to stop before the caller
	// hangs up (so the recorder's Stop Stream does not race the hang-up),
	// and in StreamErrorMidCall for a stream to cut and for its
	// replacement; default DefaultSettle.
	Settle time.Duration
	// Seed seeds the choices a scenario makes (the order and batching of
	// DuplicatedReordered); 0 picks one at random (Call.Seed tells which).
	// SIDs are always fresh.
	Seed int64
}

// Worker is an agent taking part in a call.
type Worker struct {
	SID      string // WK…
	Identity string // the Flex login, worker_name: the agent extension
	FullName string
	Team     string // worker attribute team_name (supervisors see their teams' calls)
	// ReservationSID is this call's reservation of the worker ("" for the
	// caller of an agent-to-agent call, who has none).
	ReservationSID string
	// CallSID is the worker's call leg ("" if never connected).
	CallSID string
}

// Expect is what a correct recorder shows after the call, under recording
// rules that monitor every agent (callrec's default).
type Expect struct {
	// Recorded says the customer's call is recorded.
	Recorded bool
	// Agents are the agent extensions of the agents who talked with the
	// customer, in the order they connected. The recording's custom
	// parameters name the first.
	Agents []string
	// Starts and Stops count the successful Start and Stop Stream requests
	// the recorder should make (on the customer's call). Starts includes
	// the replacement of each stream that failed.
	Starts, Stops int
	// StreamErrors counts the streams that fail mid-call (stream-error
	// callbacks the Twilio stand-in posts); each one's recording ends
	// interrupted.
	StreamErrors int
}

// Call is one played call.
type Call struct {
	Scenario      Scenario
	Seed          int64
	AccountSID    string
	WorkspaceSID  string
	TaskSID       string
	CustomerCall  string   // the customer's leg (the caller's, for an agent-to-agent call)
	AgentCalls    []string // agents' and outside parties' legs, in the order they joined
	ConferenceSID string
	Workers       []*Worker
	// Events are the events as sent, in order (a duplicate appears twice);
	// Event.Seq gives the order they happened in.
	Events []Event
	// Batches counts the Sink.Send calls.
	Batches int
	// CutStream is the stream SID StreamErrorMidCall cut.
	CutStream string
	Expect    Expect
	Started   time.Time
	Ended     time.Time
}

// Worker returns the call's worker with the identity, or nil.
func (c *Call) Worker(identity string) *Worker {
	for _, w := range c.Workers {
		if w.Identity == identity {
			return w
		}
	}
	return nil
}

// Happened returns the events once each, in the order they happened.
func (c *Call) Happened() []Event {
	seen := map[string]bool{}
	var out []Event
	for _, e := range c.Events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Event) int { return a.Seq - b.Seq })
	return out
}

// Play plays a scenario in real time: it makes fresh SIDs, registers the
// calls and conference with env.Twilio, emits the CloudEvents through
// env.Sink in their realistic order and timing (with timestamps of when
// they happen and increasing task and reservation versions), lets agents
// talk for env.Talk, and ends with the caller hanging up
// (Twilio.EndCall). The Call is returned even with an error, as far as it
// was played.
func Play(ctx context.Context, sc Scenario, env Env) (*Call, error) {
	script, ok := scripts[sc]
	if !ok {
		return nil, fmt.Errorf("scenario: unknown scenario %q", sc)
	}
	if env.Sink == nil {
		return nil, errors.New("scenario: no Sink")
	}
	if env.Account == "" {
		env.Account = simulate.DefaultAccountSID
	}
	if env.Talk <= 0 {
		env.Talk = DefaultTalk
	}
	if env.Step <= 0 {
		env.Step = DefaultStep
	}
	if env.Settle <= 0 {
		env.Settle = DefaultSettle
	}
	if env.Seed == 0 {
		env.Seed = rand.Int64N(1<<62) + 1
	}
	p := &player{ctx: ctx, env: env, rng: rand.New(rand.NewPCG(uint64(env.Seed), 0x5ce7a210)),
		reorder: sc == DuplicatedReordered}
	p.c = &Call{Scenario: sc, Seed: env.Seed, AccountSID: env.Account, WorkspaceSID: workspaceSID,
		TaskSID: simulate.NewSID("WT", nil), Started: time.Now()}
	err := script(p)
	if err == nil {
		err = p.flush(true)
	}
	if !p.hungUp {
		p.hangUp(false) // cut short: do not leave the calls (and their streams) up
	}
	p.c.Ended = time.Now()
	return p.c, errors.Join(append([]error{err}, p.problems...)...)
}

// scripts are the scenarios' scripts.
var scripts = map[Scenario]func(*player) error{
	Answered:             func(p *player) error { return p.answered(false) },
	DuplicatedReordered:  func(p *player) error { return p.answered(false) },
	StreamErrorMidCall:   func(p *player) error { return p.answered(true) },
	RejectedThenAccepted: (*player).rejectedThenAccepted,
	AbandonedInQueue:     (*player).abandoned,
	WarmTransfer:         (*player).warmTransfer,
	ExternalTransfer:     (*player).externalTransfer,
	AgentToAgent:         (*player).agentToAgent,
}

// player plays one call.
type player struct {
	ctx      context.Context
	env      Env
	c        *Call
	b        *builder
	rng      *rand.Rand
	seq      int
	last     time.Time // timestamp of the last event
	parts    []twiliotest.Participant
	legsUp   []string // agent and outside legs still up
	hungUp   bool
	problems []error

	// DuplicatedReordered: the events of the current phase, and copies
	// held back for the next one.
	reorder       bool
	pending, late []Event
}

// worker makes an agent: alice → <prefix>alice.agent@example.com, with a
// worker SID that depends on the account and identity only.
func (p *player) worker(name string) *Worker {
	id := p.env.AgentPrefix + name + ".agent@example.com"
	w := &Worker{SID: workerSID(p.env.Account, id), Identity: id, FullName: strings.ToUpper(name[:1]) + name[1:] + " Agent", Team: teamOf(name)}
	p.c.Workers = append(p.c.Workers, w)
	return w
}

// teamOf is the simulated agents' team: bob is in west, everyone else in
// east, so a supervisor of one team sees only part of the calls.
func teamOf(name string) string {
	if name == "bob" {
		return "west"
	}
	return "east"
}

// workerSID derives a stable WK SID from the account and identity.
func workerSID(account, identity string) string {
	r := rand.New(rand.NewPCG(fnv64(account), fnv64(identity)))
	return simulate.NewSID("WK", r)
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// now is the timestamp of the next event: the wall clock to the
// millisecond, strictly after the previous event's.
func (p *player) now() time.Time {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(p.last) {
		t = p.last.Add(time.Millisecond)
	}
	p.last = t
	return t
}

// emit sends the events of one moment as one batch (DuplicatedReordered
// keeps them for the end of the phase).
func (p *player) emit(evs ...Event) error {
	for i := range evs {
		evs[i].Seq = p.seq
		p.seq++
	}
	if p.reorder {
		p.pending = append(p.pending, evs...)
		return nil
	}
	return p.send(evs)
}

func (p *player) send(evs []Event) error {
	data := make([][]byte, len(evs))
	for i, e := range evs {
		data[i] = e.Data
	}
	p.c.Events = append(p.c.Events, evs...)
	p.c.Batches++
	if err := p.env.Sink.Send(p.ctx, data); err != nil {
		return fmt.Errorf("scenario %s: send %d events: %w", p.c.Scenario, len(evs), err)
	}
	return nil
}

// flush ends a phase of a DuplicatedReordered call: every event of the
// phase goes out with a copy, shuffled, in batches of one to three; a copy
// is held back for the next phase now and then (the final flush sends
// everything).
func (p *player) flush(final bool) error {
	if !p.reorder || len(p.pending)+len(p.late) == 0 {
		return nil
	}
	out := append([]Event(nil), p.late...)
	p.late = nil
	for _, e := range p.pending {
		out = append(out, e)
		if !final && p.rng.IntN(3) == 0 {
			p.late = append(p.late, e)
		} else {
			out = append(out, e)
		}
	}
	p.pending = nil
	for range 100 {
		p.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		if !chronological(out) {
			break
		}
	}
	for len(out) > 0 {
		n := min(1+p.rng.IntN(3), len(out))
		if err := p.send(out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

// chronological reports whether events are in the order they happened.
func chronological(evs []Event) bool {
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq < evs[i-1].Seq {
			return false
		}
	}
	return true
}

// pause waits d, or until ctx is done.
func (p *player) pause(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	case <-t.C:
		return nil
	}
}

func (p *player) step() error { return p.pause(p.env.Step) }

// The Twilio side (no-ops without env.Twilio).

func (p *player) addCall(sid string) {
	if p.env.Twilio != nil {
		p.env.Twilio.AddCall(sid)
	}
}

func (p *player) endCall(sid string) {
	if p.env.Twilio != nil {
		p.env.Twilio.EndCall(sid)
	}
}

// join makes a leg a participant of the conference (creating it first).
func (p *player) join(leg, label string) {
	if p.c.ConferenceSID == "" {
		p.c.ConferenceSID = simulate.NewSID("CF", nil)
	}
	p.addCall(leg)
	p.c.AgentCalls = append(p.c.AgentCalls, leg)
	p.legsUp = append(p.legsUp, leg)
	p.parts = append(p.parts, twiliotest.Participant{CallSID: leg, Label: label, Status: "connected"})
	p.setConference()
}

// leave ends a leg and takes it out of the conference.
func (p *player) leave(leg string) {
	p.endCall(leg)
	p.legsUp = slices.DeleteFunc(p.legsUp, func(s string) bool { return s == leg })
	p.parts = slices.DeleteFunc(p.parts, func(x twiliotest.Participant) bool { return x.CallSID == leg })
	p.setConference()
}

func (p *player) setConference() {
	if p.env.Twilio != nil && p.c.ConferenceSID != "" {
		p.env.Twilio.AddConference(p.c.ConferenceSID, p.parts...)
	}
}

// customerArrives starts an inbound PSTN call: the customer's leg exists
// and the task is created.
func (p *player) customerArrives() error {
	p.c.CustomerCall = simulate.NewSID("CA", nil)
	from := fmt.Sprintf("+1415555%04d", 100+p.rng.IntN(100)) // 555-0100…0199: fictional
	p.b = newBuilder(p.env.Account, p.c.TaskSID, pstnAttributes(p.env.Account, p.c.CustomerCall, from))
	p.addCall(p.c.CustomerCall)
	p.parts = []twiliotest.Participant{{CallSID: p.c.CustomerCall, Label: "customer", Status: "connected"}}
	return p.emit(p.b.taskCreated(p.now()))
}

// ring offers the task to w.
func (p *player) ring(w *Worker) error {
	if err := p.emit(p.b.offer(w, p.now())); err != nil {
		return err
	}
	return p.step()
}

// connect: w accepts, Flex dials w into the conference with the customer
// (registered with Twilio before the accept goes out) and, for the first
// agent, writes the conference into the task attributes.
func (p *player) connect(w *Worker) error {
	first := p.c.ConferenceSID == ""
	w.CallSID = simulate.NewSID("CA", nil)
	p.join(w.CallSID, "worker")
	if err := p.emit(p.b.accept(w, p.now())); err != nil {
		return err
	}
	if err := p.step(); err != nil {
		return err
	}
	if first {
		return p.emit(p.b.conferenceUp(p.now(), p.c.ConferenceSID, p.c.CustomerCall, w.CallSID))
	}
	return nil
}

// depart: w's talk ends (their leg leaves the conference) and, a step
// later, their after-call work; last says w was the task's last agent, so
// the task wraps up and completes with them.
func (p *player) depart(w *Worker, last bool) error {
	p.leave(w.CallSID)
	evs := []Event{p.b.wrapup(w, p.now(), last)}
	if last {
		evs = append(evs, p.b.taskWrapup(p.now()))
	}
	if err := p.emit(evs...); err != nil {
		return err
	}
	if err := p.step(); err != nil {
		return err
	}
	evs = []Event{p.b.complete(w, p.now(), last)}
	if last {
		evs = append(evs, p.b.taskCompleted(p.now()))
	}
	return p.emit(evs...)
}

// hangUp: the caller hangs up, ending the call. With settle, it first
// waits (at most Settle) for the streams on the customer's call to stop,
// so a recorder's Stop Stream meets a live stream rather than racing the
// hang-up.
func (p *player) hangUp(settle bool) {
	p.hungUp = true
	if p.env.Twilio == nil || p.c.CustomerCall == "" {
		return
	}
	if settle {
		_ = p.await(func() bool { _, live := p.liveStream(""); return !live })
	}
	p.leave(p.c.CustomerCall)
	for _, leg := range slices.Clone(p.legsUp) {
		p.leave(leg)
	}
}

// liveStream returns a stream on the customer's call that is still
// sending, other than except.
func (p *player) liveStream(except string) (string, bool) {
	tw := p.env.Twilio
	done := tw.Results()
	for _, s := range tw.Streams() {
		if s.CallSID != p.c.CustomerCall || s.SID == except || s.Status != "in-progress" {
			continue
		}
		if _, over := done[s.SID]; !over {
			return s.SID, true
		}
	}
	return "", false
}

// await polls cond until it holds (true) or Settle passes (false).
func (p *player) await(cond func() bool) bool {
	deadline := time.Now().Add(p.env.Settle)
	for !cond() {
		if time.Now().After(deadline) || p.pause(20*time.Millisecond) != nil {
			return false
		}
	}
	return true
}

// talk lets the parties talk for d; with cut, the customer's Media Stream
// is cut halfway (once the recorder has one running), and the rest of the
// talk starts once the recorder replaced it (or Settle passed).
func (p *player) talk(d time.Duration, cut bool) error {
	if !cut || p.env.Twilio == nil {
		return p.pause(d)
	}
	if err := p.pause(d / 2); err != nil {
		return err
	}
	var sid string
	if !p.await(func() bool { var ok bool; sid, ok = p.liveStream(""); return ok }) {
		p.problems = append(p.problems, fmt.Errorf("scenario %s: no Media Stream on the customer's call %s within %v: nothing to cut",
			p.c.Scenario, p.c.CustomerCall, p.env.Settle))
		return p.pause(d - d/2)
	}
	// The recorder's replacement is a stream started after the cut (with
	// dual streams, the other copy is live all along).
	before := map[string]bool{}
	for _, s := range p.env.Twilio.Streams() {
		before[s.SID] = true
	}
	if p.env.Twilio.Cut(sid) {
		p.c.CutStream = sid
		p.await(func() bool {
			for _, s := range p.env.Twilio.Streams() {
				if s.CallSID == p.c.CustomerCall && !before[s.SID] {
					return true
				}
			}
			return false
		})
	}
	return p.pause(d - d/2)
}

// The scripts.

func (p *player) answered(cut bool) error {
	alice := p.worker("alice")
	p.c.Expect = Expect{Recorded: true, Agents: []string{alice.Identity}, Starts: 1, Stops: 1}
	if cut {
		p.c.Expect.Starts, p.c.Expect.StreamErrors = 2, 1
	}
	return p.run(
		p.customerArrives, p.step,
		func() error { return p.ring(alice) },
		func() error { return p.connect(alice) },
		func() error { return p.flush(false) },
		func() error { return p.talk(p.env.Talk, cut) },
		func() error { return p.depart(alice, true) },
		func() error { return p.flush(true) },
		func() error { p.hangUp(true); return nil },
	)
}

func (p *player) rejectedThenAccepted() error {
	alice, bob := p.worker("alice"), p.worker("bob")
	p.c.Expect = Expect{Recorded: true, Agents: []string{bob.Identity}, Starts: 1, Stops: 1}
	return p.run(
		p.customerArrives, p.step,
		func() error { return p.ring(alice) },
		func() error { return p.emit(p.b.reject(alice, p.now())) }, p.step,
		func() error { return p.ring(bob) },
		func() error { return p.connect(bob) },
		func() error { return p.talk(p.env.Talk, false) },
		func() error { return p.depart(bob, true) },
		func() error { p.hangUp(true); return nil },
	)
}

func (p *player) abandoned() error {
	alice := p.worker("alice")
	p.c.Expect = Expect{}
	return p.run(
		p.customerArrives, p.step,
		func() error { return p.ring(alice) },
		func() error { return p.pause(p.env.Talk / 2) }, // the customer waits, then gives up
		func() error { p.hangUp(false); return nil },
		func() error { return p.emit(p.b.cancel(alice, p.now()), p.b.taskCanceled(p.now())) },
	)
}

func (p *player) warmTransfer() error {
	alice, bob := p.worker("alice"), p.worker("bob")
	p.c.Expect = Expect{Recorded: true, Agents: []string{alice.Identity, bob.Identity}, Starts: 1, Stops: 1}
	var x *transfer
	return p.run(
		p.customerArrives, p.step,
		func() error { return p.ring(alice) },
		func() error { return p.connect(alice) },
		func() error { return p.talk(p.env.Talk, false) },
		func() error {
			x = &transfer{sid: simulate.NewSID("TT", nil), mode: "WARM", typ: "WORKER", to: bob.SID, from: alice, started: p.now()}
			return p.emit(p.b.transferEvent(callrec.EventTransferInitiated, x, x.started))
		}, p.step,
		func() error { return p.ring(bob) },
		func() error { return p.connect(bob) }, p.step,
		func() error { return p.emit(p.b.transferEvent(callrec.EventTransferCompleted, x, p.now())) }, p.step,
		func() error { return p.depart(alice, false) },
		func() error { return p.talk(p.env.Talk, false) },
		func() error { return p.depart(bob, true) },
		func() error { p.hangUp(true); return nil },
	)
}

func (p *player) externalTransfer() error {
	alice := p.worker("alice")
	p.c.Expect = Expect{Recorded: true, Agents: []string{alice.Identity}, Starts: 1, Stops: 1}
	var x *transfer
	return p.run(
		p.customerArrives, p.step,
		func() error { return p.ring(alice) },
		func() error { return p.connect(alice) },
		func() error { return p.talk(p.env.Talk, false) },
		func() error {
			x = &transfer{sid: simulate.NewSID("TT", nil), mode: "COLD", to: externalNumber, from: alice, started: p.now()}
			return p.emit(p.b.transferEvent(callrec.EventTransferInitiated, x, x.started))
		},
		func() error { p.join(simulate.NewSID("CA", nil), "external"); return p.step() },
		func() error { return p.emit(p.b.transferEvent(callrec.EventTransferCompleted, x, p.now())) }, p.step,
		func() error { return p.depart(alice, true) },
		func() error { return p.talk(p.env.Talk/2, false) }, // with the outside party: not recorded
		func() error { p.hangUp(true); return nil },
	)
}

func (p *player) agentToAgent() error {
	alice, bob := p.worker("alice"), p.worker("bob")
	p.c.Expect = Expect{Recorded: false, Agents: []string{bob.Identity}}
	return p.run(
		func() error {
			alice.CallSID = simulate.NewSID("CA", nil)
			p.c.CustomerCall = alice.CallSID
			p.b = newBuilder(p.env.Account, p.c.TaskSID, internalAttributes(p.env.Account, alice.CallSID, alice, bob))
			p.addCall(alice.CallSID)
			p.parts = []twiliotest.Participant{{CallSID: alice.CallSID, Label: "customer", Status: "connected"}}
			return p.emit(p.b.taskCreated(p.now()))
		}, p.step,
		func() error { return p.ring(bob) },
		func() error { return p.connect(bob) },
		func() error { return p.talk(p.env.Talk, false) },
		func() error { return p.depart(bob, true) },
		func() error { p.hangUp(true); return nil },
	)
}

// run runs steps in order until one fails.
func (p *player) run(steps ...func() error) error {
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}
