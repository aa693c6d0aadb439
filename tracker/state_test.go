package tracker_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/tracker"
)

// gotDecision is the part of a decision the real-order tests compare.
type gotDecision struct {
	After                   int
	Kind                    tracker.DecisionKind
	Name, Reason, Key       string
	Agent, Worker, Call, CF string
}

// TestScenarios applies each scenario in its real order and checks every
// decision (when, what, why, for whom) and the final contact.
func TestScenarios(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			s := tracker.NewState(sc.rules)
			var got []gotDecision
			for i, ev := range sc.events {
				for _, d := range s.Apply(ev) {
					if d.TaskSID != taskSID {
						t.Errorf("decision for task %q", d.TaskSID)
					}
					got = append(got, gotDecision{i, d.Kind, d.Name, d.Reason, d.Key,
						d.AgentExtension, d.WorkerSID, d.CallSID, d.ConferenceSID})
				}
			}
			var want []gotDecision
			for _, w := range sc.want {
				k := key(w.kind, w.gen)
				name := k[len(w.kind)+1 : len(k)-2]
				want = append(want, gotDecision{w.after, w.kind, name, w.reason, k,
					w.agent.name, w.agent.sid, w.call, w.conf})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			c, ok := s.Contact(taskSID)
			if !ok {
				t.Fatal("no contact")
			}
			if diff := cmp.Diff(sc.contact, c); diff != "" {
				t.Errorf("contact (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWarmTransferNeverStops: across the warm transfer, in real order, the
// one stream is never stopped before Bob leaves.
func TestWarmTransferNeverStops(t *testing.T) {
	sc := warmTransfer()
	s := tracker.NewState(sc.rules)
	for i, ev := range sc.events {
		for _, d := range s.Apply(ev) {
			if d.Kind == tracker.StopStream && i < 10 {
				t.Errorf("event %d (%s): %+v", i, ev.Type, d)
			}
		}
	}
}

// TestResume shows the documented exception: Alice's accept and wrap-up
// arrive before Bob's accept; the stream stops (every known monitored agent
// left), then resumes as generation 2 for Bob.
func TestResume(t *testing.T) {
	sc := warmTransfer()
	order := []int{0, 1, 2, 3, 8, 6, 4, 5, 7, 9, 10, 11, 12, 13}
	if !warmResumes(order) {
		t.Fatal("oracle disagrees")
	}
	s := tracker.NewState(sc.rules)
	var got []string
	for _, i := range order {
		for _, d := range s.Apply(sc.events[i]) {
			got = append(got, d.Key+" "+d.AgentExtension+" "+d.Reason)
		}
	}
	want := []string{
		key(tracker.StartStream, 1) + " " + alice.name + " " + tracker.ReasonAnswered,
		key(tracker.StopStream, 1) + " " + alice.name + " " + tracker.ReasonAgentLeft,
		key(tracker.StartStream, 2) + " " + bob.name + " " + tracker.ReasonResumed,
		key(tracker.StopStream, 2) + " " + bob.name + " " + tracker.ReasonAgentLeft,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestLatePair: reservation.completed and wrapup before accepted give a
// Start+Stop pair in one Apply, which Effective removes.
func TestLatePair(t *testing.T) {
	sc := answered()
	s := tracker.NewState(sc.rules)
	var last []tracker.Decision
	for _, i := range []int{0, 1, 3, 5, 4, 2} {
		if ds := s.Apply(sc.events[i]); i != 2 && len(ds) != 0 {
			t.Fatalf("event %d: %v", i, ds)
		} else {
			last = ds
		}
	}
	if len(last) != 2 || last[0].Kind != tracker.StartStream || last[1].Kind != tracker.StopStream ||
		last[0].Reason != tracker.ReasonLate || last[1].Reason != tracker.ReasonLate {
		t.Fatalf("accept after wrap-up: %+v", last)
	}
	if eff := tracker.Effective(last); len(eff) != 0 {
		t.Errorf("Effective kept %+v", eff)
	}
}

func TestEffective(t *testing.T) {
	start := func(name string) tracker.Decision { return tracker.Decision{Kind: tracker.StartStream, Name: name} }
	stop := func(name string) tracker.Decision { return tracker.Decision{Kind: tracker.StopStream, Name: name} }
	for _, tc := range []struct {
		name string
		in   []tracker.Decision
		want []tracker.Decision
	}{
		{"empty", nil, []tracker.Decision{}},
		{"start", []tracker.Decision{start("a")}, []tracker.Decision{start("a")}},
		{"stop then start", []tracker.Decision{stop("a"), start("b")}, []tracker.Decision{stop("a"), start("b")}},
		{"late pair", []tracker.Decision{stop("a"), start("b"), stop("b"), start("c")},
			[]tracker.Decision{stop("a"), start("c")}},
		{"stop before start is not a pair", []tracker.Decision{stop("a"), start("a")},
			[]tracker.Decision{stop("a"), start("a")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tracker.Effective(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDuplicateGivesNothing(t *testing.T) {
	sc := answered()
	s := tracker.NewState(sc.rules)
	for i, ev := range sc.events {
		first := s.Apply(ev)
		if again := s.Apply(ev); len(again) != 0 {
			t.Errorf("event %d again: %v (first %v)", i, again, first)
		}
	}
}

// TestConferenceOnly: a customer leg known only as a conference gives a
// start with ConferenceSID and no CallSID.
func TestConferenceOnly(t *testing.T) {
	c := inbound().withAttrs(callrec.TaskAttributes{Direction: "outbound", To: customerNum}).
		taskEv(taskCreated, 0).
		res(resAccepted, alice, resA, 1).
		conference(5, map[string]string{"worker": agentLeg})
	s := tracker.NewState(defaultRules)
	var got []tracker.Decision
	for _, ev := range c.events {
		got = append(got, s.Apply(ev)...)
	}
	if len(got) != 1 || got[0].Kind != tracker.StartStream || got[0].CallSID != "" ||
		got[0].ConferenceSID != conferenceID {
		t.Fatalf("got %+v", got)
	}
}

// TestInternalFlagged: attributes marking an internal call with identities
// (not client: URIs) suppress recording when both agents are monitored.
func TestInternalFlagged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules tracker.Rules
		raw   map[string]any
		from  string
		to    string
		want  int
	}{
		{"type internal, emails", defaultRules, map[string]any{"type": "internal"}, alice.name, bob.name, 0},
		{"internal true, target worker", defaultRules, map[string]any{"internal": true, "targetWorker": bob.sid}, alice.clientURI(), "", 0},
		{"not flagged, emails", defaultRules, nil, alice.name, bob.name, 1},
		{"flagged, phone number", defaultRules, map[string]any{"type": "internal"}, alice.name, externalNum, 1},
		{"agent list names only bob", tracker.Rules{Agents: []string{bob.name}}, nil, alice.clientURI(), bob.clientURI(), 1},
		{"agent list names both", tracker.Rules{Agents: []string{bob.name, alice.name}}, nil, alice.clientURI(), bob.clientURI(), 0},
		{"attribute rules cannot judge the far end", tracker.Rules{Attribute: "team", Values: []string{"sales"}}, nil, alice.clientURI(), bob.clientURI(), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := inbound().withAttrs(callrec.TaskAttributes{CallSID: customerLeg, From: tc.from, To: tc.to, Raw: tc.raw}).
				taskEv(taskCreated, 0).
				res(resAccepted, bob, resB, 1)
			s := tracker.NewState(tc.rules)
			var got []tracker.Decision
			for _, ev := range c.events {
				got = append(got, s.Apply(ev)...)
			}
			if len(got) != tc.want {
				t.Errorf("got %d decisions, want %d: %+v", len(got), tc.want, got)
			}
		})
	}
}
