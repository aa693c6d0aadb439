package tracker_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/tracker"
)

// TestContactIsACopy: changing a returned Contact does not change the state.
func TestContactIsACopy(t *testing.T) {
	s := tracker.NewState(defaultRules)
	for _, ev := range answeredEvents().events {
		s.Apply(ev)
	}
	c, ok := s.Contact(taskSID)
	if !ok {
		t.Fatal("no contact")
	}
	want := answered().contact
	c.Participants["customer"] = "CAchanged"
	c.Connections[0].Status = callrec.ConnAlerting
	c.Status = callrec.ContactQueued
	all := s.Contacts()
	all[0].Connections[0].AgentExtension = "changed"
	again, _ := s.Contact(taskSID)
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("state changed through a copy (-want +got):\n%s", diff)
	}
}

func TestContactsOrderAndForget(t *testing.T) {
	s := tracker.NewState(defaultRules)
	late := answeredEvents().events[0]
	late.TaskSID, late.Time = "WT00000000000000000000000000000002", at(50)
	early := answeredEvents().events[0]
	early.TaskSID, early.Time = "WT00000000000000000000000000000003", at(-50)
	for _, ev := range []callrec.CTIEvent{late, answeredEvents().events[0], early} {
		s.Apply(ev)
	}
	var got []string
	for _, c := range s.Contacts() {
		got = append(got, c.TaskSID)
	}
	want := []string{early.TaskSID, taskSID, late.TaskSID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	s.Forget(taskSID)
	s.Forget("WTunknown")
	if _, ok := s.Contact(taskSID); ok {
		t.Error("forgotten contact still there")
	}
	if n := len(s.Contacts()); n != 2 {
		t.Errorf("%d contacts after Forget, want 2", n)
	}
}

// TestIgnored: events without a task and tasks of other channels make no
// contact; unknown task event types still fill the contact.
func TestIgnored(t *testing.T) {
	s := tracker.NewState(defaultRules)
	chat := answeredEvents().events[2]
	chat.TaskChannel = "chat"
	worker := callrec.CTIEvent{Type: "worker.activity.update", WorkerSID: alice.sid}
	for _, ev := range []callrec.CTIEvent{chat, worker} {
		if ds := s.Apply(ev); len(ds) != 0 {
			t.Errorf("%s: %v", ev.Type, ds)
		}
	}
	if n := len(s.Contacts()); n != 0 {
		t.Fatalf("%d contacts", n)
	}
	other := answeredEvents().events[0]
	other.Type = "task.queue-entered"
	s.Apply(other)
	c, ok := s.Contact(taskSID)
	if !ok || c.Status != callrec.ContactQueued || c.QueueName != "Support" || c.CustomerCall != customerLeg {
		t.Errorf("contact %+v", c)
	}
}

// TestNoRestartAfterEnd: a reservation accepted (late) after the task
// completed yields only a late pair, nothing the Stream Manager acts on.
func TestNoRestartAfterEnd(t *testing.T) {
	sc := answered()
	s := tracker.NewState(sc.rules)
	for _, i := range []int{0, 1, 3, 7} {
		if ds := s.Apply(sc.events[i]); len(ds) != 0 {
			t.Fatalf("event %d: %v", i, ds)
		}
	}
	ds := s.Apply(sc.events[2])
	if len(ds) != 2 || len(tracker.Effective(ds)) != 0 {
		t.Fatalf("late accept: %+v", ds)
	}
	if ds[1].Reason != tracker.ReasonLate {
		t.Errorf("reason %q", ds[1].Reason)
	}
}

// TestTransferTargets: which transfers hand the call outside the switch.
func TestTransferTargets(t *testing.T) {
	for _, tc := range []struct {
		name string
		tr   callrec.Transfer
		stop bool
	}{
		{"external type", callrec.Transfer{Mode: "COLD", Type: "EXTERNAL", To: externalNum}, true},
		{"phone number, no type", callrec.Transfer{Mode: "WARM", To: "sip:agent@pbx.example.com"}, true},
		{"queue", callrec.Transfer{Mode: "COLD", Type: "QUEUE", To: queue2SID}, false},
		{"worker", callrec.Transfer{Mode: "COLD", Type: "WORKER", To: bob.sid}, false},
		{"worker SID, no type", callrec.Transfer{Mode: "COLD", To: bob.sid}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := inbound().
				taskEv(taskCreated, 0).
				res(resAccepted, alice, resA, 8).
				transfer(xferInit, 60, alice, resA, tc.tr).
				transfer(xferDone, 65, alice, resA, tc.tr)
			s := tracker.NewState(defaultRules)
			var got []tracker.Decision
			for _, ev := range c.events {
				got = append(got, s.Apply(ev)...)
			}
			stopped := len(got) == 2 && got[1].Reason == tracker.ReasonExternal
			if stopped != tc.stop || (!tc.stop && len(got) != 1) {
				t.Errorf("decisions %+v", got)
			}
		})
	}
}
