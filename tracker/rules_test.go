package tracker_test

import (
	"testing"

	"callrec"
	"callrec/tracker"
)

// workerEvent is a reservation event of agent a.
func workerEvent(a agent) *callrec.CTIEvent {
	return &callrec.CTIEvent{
		Type: resAccepted, TaskSID: taskSID, ReservationSID: resA,
		WorkerSID: a.sid, WorkerName: a.name, Worker: a.attrs(),
	}
}

func TestRulesMonitored(t *testing.T) {
	noName := workerEvent(alice)
	noName.WorkerName = "" // the email attribute names the agent
	rawList := workerEvent(bob)
	rawList.Worker.Raw["team"] = []any{"north", "Sales"}
	noRaw := workerEvent(bob)
	noRaw.Worker.Raw = nil // decoded fields still answer for "roles"
	nested := workerEvent(carol)
	for _, tc := range []struct {
		name  string
		rules tracker.Rules
		ev    *callrec.CTIEvent
		want  bool
	}{
		{"zero rules monitor all", tracker.Rules{}, workerEvent(carol), true},
		{"monitor all", tracker.Rules{MonitorAll: true}, workerEvent(alice), true},
		{"exclude wins over monitor all", tracker.Rules{MonitorAll: true, Exclude: []string{alice.name}}, workerEvent(alice), false},
		{"exclude alone keeps the rest", tracker.Rules{Exclude: []string{alice.name}}, workerEvent(bob), true},
		{"exclude by worker SID", tracker.Rules{Exclude: []string{carol.sid}}, workerEvent(carol), false},
		{"exclude wins over agents", tracker.Rules{Agents: []string{alice.name}, Exclude: []string{alice.sid}}, workerEvent(alice), false},
		{"listed by extension", tracker.Rules{Agents: []string{"Alice.Agent@Example.com"}}, workerEvent(alice), true},
		{"listed by worker SID", tracker.Rules{Agents: []string{bob.sid}}, workerEvent(bob), true},
		{"listed by email attribute", tracker.Rules{Agents: []string{alice.name}}, noName, true},
		{"not listed", tracker.Rules{Agents: []string{alice.name}}, workerEvent(bob), false},
		{"attribute string", tracker.Rules{Attribute: "team", Values: []string{"sales"}}, workerEvent(bob), true},
		{"attribute string, other value", tracker.Rules{Attribute: "team", Values: []string{"sales"}}, workerEvent(carol), false},
		{"attribute list", tracker.Rules{Attribute: "team", Values: []string{"sales"}}, rawList, true},
		{"roles", tracker.Rules{Attribute: "roles", Values: []string{"supervisor"}}, workerEvent(bob), true},
		{"roles, not held", tracker.Rules{Attribute: "roles", Values: []string{"supervisor"}}, workerEvent(alice), false},
		{"roles from decoded fields", tracker.Rules{Attribute: "roles", Values: []string{"supervisor"}}, noRaw, true},
		{"dotted path", tracker.Rules{Attribute: "routing.skills", Values: []string{"support"}}, nested, true},
		{"missing attribute", tracker.Rules{Attribute: "region", Values: []string{"emea"}}, workerEvent(alice), false},
		{"attribute or list", tracker.Rules{Agents: []string{alice.name}, Attribute: "team", Values: []string{"support"}}, workerEvent(carol), true},
		{"attribute, excluded", tracker.Rules{Attribute: "team", Values: []string{"sales"}, Exclude: []string{bob.name}}, workerEvent(bob), false},
		{"no worker", tracker.Rules{MonitorAll: true}, &callrec.CTIEvent{Type: taskCreated}, false},
		{"nil event", tracker.Rules{MonitorAll: true}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rules.Monitored(tc.ev); got != tc.want {
				t.Errorf("Monitored = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRulesDriveRecording: an unmonitored agent's answer starts nothing.
func TestRulesDriveRecording(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules tracker.Rules
		want  int
	}{
		{"monitored", tracker.Rules{Attribute: "team", Values: []string{"sales"}}, 2},
		{"not monitored", tracker.Rules{Attribute: "team", Values: []string{"support"}}, 0},
		{"excluded", tracker.Rules{MonitorAll: true, Exclude: []string{alice.name}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tracker.NewState(tc.rules)
			var n int
			for _, ev := range answeredEvents().events {
				n += len(s.Apply(ev))
			}
			if n != tc.want {
				t.Errorf("%d decisions, want %d", n, tc.want)
			}
			c, _ := s.Contact(taskSID)
			if got := c.Connections[0].Monitored; got != (tc.want > 0) {
				t.Errorf("connection monitored = %v", got)
			}
		})
	}
}
