package eventadapter_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/eventadapter"
	"callrec/internal/callrectest"
)

// summary is what every fixture is checked on.
type summary struct {
	ID                 string
	Type               callrec.CTIEventType
	Time               time.Time
	AccountSID         string
	WorkspaceSID       string
	TaskSID            string
	TaskVersion        int64
	TaskStatus         string
	TaskChannel        string
	TaskQueue          string
	TaskReason         string
	ReservationSID     string
	ReservationVersion int64
	WorkerSID          string
	WorkerName         string
	WorkerEmail        string
	CustomerCallSID    string
	HasConference      bool
	HasTransfer        bool
}

func summarize(ev callrec.CTIEvent) summary {
	return summary{
		ID: ev.ID, Type: ev.Type, Time: ev.Time,
		AccountSID: ev.AccountSID, WorkspaceSID: ev.WorkspaceSID,
		TaskSID: ev.TaskSID, TaskVersion: ev.TaskVersion, TaskStatus: ev.TaskAssignmentStatus,
		TaskChannel: ev.TaskChannel, TaskQueue: ev.TaskQueueName, TaskReason: ev.TaskReason,
		ReservationSID: ev.ReservationSID, ReservationVersion: ev.ReservationVersion,
		WorkerSID: ev.WorkerSID, WorkerName: ev.WorkerName, WorkerEmail: ev.Worker.Email,
		CustomerCallSID: ev.Task.CustomerCallSID(),
		HasConference:   ev.Task.Conference != nil, HasTransfer: ev.Transfer != nil,
	}
}

const (
	account   = "ACe268443e43d93dab7ebef303bbe9642f"
	workspace = "WS1629dee48cc4e53161f9b2be8614e062"
	task      = "WTc146b6ad38277b931d94d82f20703136"
	task2     = "WTbdde8c2aa182d4fb0afd32b925165b46" // abandoned in queue
	resAlice  = "WR16792ea346317c17b1487d339b1a86ed"
	alice     = "WK6384e2b2184bcbf58eccf10ca7a6563c"
	bob       = "WK9f9d51bc70ef21ca5c14f307980a29d8"
	carol     = "WKa9a0198010a6073db96434f6cc5f22a8"
	customer  = "CAc0bb2f535401483f8461ddeef83c2d68"
	customer2 = "CA9424d69c942a7bf6bb44b5a0af571193"
	agentLeg  = "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
	confSID   = "CFab3049da9a0cd8d6e8b7c62586752472"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecode_Fixtures(t *testing.T) {
	// res builds a reservation event's summary, tk a task event's.
	res := func(id, typ, at, taskSID string, tv int64, resSID string, rv int64, worker, name, status, reason, call string, conf bool) summary {
		return summary{ID: id, Type: callrec.CTIEventType(typ), Time: ts(at), AccountSID: account, WorkspaceSID: workspace,
			TaskSID: taskSID, TaskVersion: tv, TaskStatus: status, TaskChannel: "voice", TaskQueue: "Support", TaskReason: reason,
			ReservationSID: resSID, ReservationVersion: rv, WorkerSID: worker, WorkerName: name, WorkerEmail: name,
			CustomerCallSID: call, HasConference: conf}
	}
	tk := func(id, typ, at, taskSID string, tv int64, status, reason, call string, conf bool) summary {
		return summary{ID: id, Type: callrec.CTIEventType(typ), Time: ts(at), AccountSID: account, WorkspaceSID: workspace,
			TaskSID: taskSID, TaskVersion: tv, TaskStatus: status, TaskChannel: "voice", TaskQueue: "Support", TaskReason: reason,
			ReservationVersion: -1, CustomerCallSID: call, HasConference: conf}
	}
	transfer := func(s summary) summary { s.HasTransfer = true; return s }
	const aliceName, bobName, carolName = "alice.agent@example.com", "bob.agent@example.com", "carol.agent@example.com"
	tests := []struct {
		file string
		want summary
	}{
		{"reservation.created.json", res("EZb231169d792bdd9a88d6d84323a1eb05", "reservation.created", "2025-06-03T14:02:03.120Z", task, 1, resAlice, 0, alice, aliceName, "reserved", "", customer, false)},
		{"reservation.accepted.json", res("EZ5707822729a621a69762ce428e6707c6", "reservation.accepted", "2025-06-03T14:02:08.450Z", task, 2, resAlice, 1, alice, aliceName, "assigned", "", customer, false)},
		{"reservation.rejected.json", res("EZa8d71790d492760a697f1d1af62846f9", "reservation.rejected", "2025-06-03T14:02:02.900Z", task, 1, "WRe9dd81ddaa04026de205e19807a695fc", 1, bob, bobName, "pending", "", customer, false)},
		{"reservation.timeout.json", res("EZ05ba521f62d634bcc53842b33fe797a7", "reservation.timeout", "2025-06-03T14:02:02.500Z", task, 1, "WR9292a52b82258088db4d81d9f8decd7b", 1, carol, carolName, "pending", "", customer, false)},
		{"reservation.rescinded.json", res("EZab376a5f99af1c9ffa9ee7530f0ac07a", "reservation.rescinded", "2025-06-03T14:02:08.470Z", task, 1, "WRab156c022967cb1bee3bee65fa7e4397", 1, carol, carolName, "assigned", "", customer, false)},
		{"reservation.canceled.json", res("EZafd26b6701dd5c76a016dd416588373a", "reservation.canceled", "2025-06-03T14:10:15.000Z", task2, 1, "WR2361c5180d3a212b9e6bcacd03843c3e", 1, bob, bobName, "canceled", "hangup", customer2, false)},
		{"reservation.wrapup.json", res("EZ6ee49451207f9f63df6125e75ccbcef9", "reservation.wrapup", "2025-06-03T14:05:30.010Z", task, 4, resAlice, 2, alice, aliceName, "wrapping", "", customer, true)},
		{"reservation.completed.json", res("EZb7670c6983bcf42fbbde1e2888a3a8e2", "reservation.completed", "2025-06-03T14:06:10.500Z", task, 5, resAlice, 3, alice, aliceName, "completed", "", customer, true)},
		{"task.created.json", tk("EZ18a73f7f5ef967218799fb4e7ea58ddd", "task.created", "2025-06-03T14:02:00.120Z", task, 1, "pending", "", customer, false)},
		{"task.updated.conference.json", tk("EZ5454ffc53f676b65f7cbdb7ba44f2721", "task.updated", "2025-06-03T14:02:09.930Z", task, 3, "assigned", "", customer, true)},
		{"task.wrapup.json", tk("EZ0153ef77f9b0a913a0cdfdd31dba3b0e", "task.wrapup", "2025-06-03T14:05:30.010Z", task, 4, "wrapping", "", customer, true)},
		{"task.completed.json", tk("EZ7b096882cd60ae1fb2d1af9da788759a", "task.completed", "2025-06-03T14:06:10.500Z", task, 5, "completed", "Task completed by worker", customer, true)},
		{"task.canceled.json", tk("EZ8ecd8ddeb073d7242b51f5593401eb24", "task.canceled", "2025-06-03T14:10:15.000Z", task2, 1, "canceled", "hangup", customer2, false)},
		{"task.transfer-initiated.json", transfer(res("EZc02cdc65e92ef9fb152b939747172452", "task.transfer-initiated", "2025-06-03T14:04:00.000Z", task, 1, resAlice, 1, alice, aliceName, "assigned", "", customer, true))},
		{"task.transfer-completed.json", transfer(res("EZ4f33ab52e61c6b44b0968340a69654c1", "task.transfer-completed", "2025-06-03T14:04:20.000Z", task, 1, resAlice, 1, alice, aliceName, "assigned", "", customer, true))},
	}
	files, err := filepath.Glob(filepath.Join(callrectest.Root(), "testdata", "twilio", "event-streams", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(files), len(tests)+3; got != want { // + kinesis and the two webhook batches
		t.Errorf("fixture files = %d, want %d: a new fixture needs a row here", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := eventadapter.Decode(callrectest.Fixture(t, "event-streams/"+tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(summarize(ev), tt.want); diff != "" {
				t.Errorf("Decode (-got +want):\n%s", diff)
			}
			if !ev.Received.IsZero() || ev.Origin != "" {
				t.Errorf("Received, Origin = %v, %q; want them unset", ev.Received, ev.Origin)
			}
		})
	}
}

func TestDecode_ReservationAccepted(t *testing.T) {
	ev, err := eventadapter.Decode(callrectest.Fixture(t, "event-streams/reservation.accepted.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := callrec.CTIEvent{
		ID:                   "EZ5707822729a621a69762ce428e6707c6",
		Type:                 callrec.EventReservationAccepted,
		Time:                 time.Date(2025, 6, 3, 14, 2, 8, 450e6, time.UTC),
		Source:               "/v1/Workspaces/WS1629dee48cc4e53161f9b2be8614e062/Events/EV578a0959bda84cfc707106a09a82142c",
		AccountSID:           account,
		WorkspaceSID:         workspace,
		TaskSID:              task,
		TaskVersion:          2,
		TaskAssignmentStatus: "assigned",
		TaskChannel:          "voice",
		TaskQueueSID:         "WQ5b66b75bc906e008c3a9ed130b8b4385",
		TaskQueueName:        "Support",
		Task: callrec.TaskAttributes{
			CallSID: customer, From: "+14155550123", To: "+14155550100", Direction: "inbound",
			Raw: jsonObject(t, "flex/task-attributes-voice-before-accept.json"),
		},
		ReservationSID:     resAlice,
		ReservationVersion: 1,
		WorkerSID:          alice,
		WorkerName:         "alice.agent@example.com",
		Worker: callrec.WorkerAttributes{
			Email: "alice.agent@example.com", FullName: "Alice Agent", Roles: []string{"agent"},
			ContactURI: "client:alice_2Eagent_40example_2Ecom",
			Raw:        jsonObject(t, "flex/worker-attributes.json"),
		},
	}
	if diff := cmp.Diff(ev, want); diff != "" {
		t.Errorf("Decode (-got +want):\n%s", diff)
	}
	if got, want := ev.AgentExtension(), "alice.agent@example.com"; got != want {
		t.Errorf("AgentExtension = %q, want %q", got, want)
	}
}

func TestDecode_TaskUpdatedConference(t *testing.T) {
	ev, err := eventadapter.Decode(callrectest.Fixture(t, "event-streams/task.updated.conference.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &callrec.Conference{SID: confSID, Participants: map[string]string{"customer": customer, "worker": agentLeg}}
	if diff := cmp.Diff(ev.Task.Conference, want); diff != "" {
		t.Errorf("Conference (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(ev.Task.Raw, jsonObject(t, "flex/task-attributes-voice-after-accept.json")); diff != "" {
		t.Errorf("Raw (-got +want):\n%s", diff)
	}
	if ev.WorkerSID != "" || ev.ReservationSID != "" || ev.Worker.Raw != nil || ev.Transfer != nil {
		t.Errorf("task event has worker/reservation/transfer fields: %+v", ev)
	}
}

func TestDecode_Transfers(t *testing.T) {
	for _, tt := range []struct {
		file, status string
	}{
		{"task.transfer-initiated.json", "initiated"},
		{"task.transfer-completed.json", "completed"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := eventadapter.Decode(callrectest.Fixture(t, "event-streams/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			want := &callrec.Transfer{
				SID: "TT321d2d398c00882d013299877a6fb8ba", Mode: "WARM", Type: "QUEUE",
				To: "WQe8d837e84e2d942bc8b59197ca8011d8", Status: tt.status,
				InitiatingWorkerSID: alice, InitiatingReservationSID: resAlice,
			}
			if diff := cmp.Diff(ev.Transfer, want); diff != "" {
				t.Errorf("Transfer (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecode_Kinesis(t *testing.T) {
	var resp struct {
		Records []struct {
			Data           string
			SequenceNumber string
		}
	}
	if err := json.Unmarshal(callrectest.Fixture(t, "event-streams/kinesis-getrecords-response.json"), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Records) == 0 {
		t.Fatal("no records")
	}
	for _, rec := range resp.Records {
		data, err := base64.StdEncoding.DecodeString(rec.Data)
		if err != nil {
			t.Fatalf("record %s: %v", rec.SequenceNumber, err)
		}
		ev, err := eventadapter.Decode(data)
		if err != nil {
			t.Fatalf("record %s: %v", rec.SequenceNumber, err)
		}
		want, _ := eventadapter.Decode(callrectest.Fixture(t, "event-streams/reservation.accepted.json"))
		if diff := cmp.Diff(ev, want); diff != "" {
			t.Errorf("record %s (-got +want):\n%s", rec.SequenceNumber, diff)
		}
	}
}

func TestDecodeBatch_Fixtures(t *testing.T) {
	for _, file := range []string{"webhook-sink-batch.json", "webhook-sink-batch.compact.json"} {
		t.Run(file, func(t *testing.T) {
			raws, err := eventadapter.DecodeBatch(callrectest.Fixture(t, "event-streams/"+file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, raw := range raws {
				ev, err := eventadapter.Decode(raw)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				got = append(got, ev.ID+" "+string(ev.Type))
			}
			want := []string{
				"EZb231169d792bdd9a88d6d84323a1eb05 reservation.created",
				"EZ5707822729a621a69762ce428e6707c6 reservation.accepted",
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	one := string(callrectest.Fixture(t, "event-streams/task.created.json"))
	tests := []struct {
		name    string
		in      string
		wantN   int
		wantErr error
	}{
		{"array", "[" + one + "," + one + "]", 2, nil},
		{"empty array", " [] ", 0, nil},
		{"single object", "\n" + one, 1, nil},
		{"empty", "", 0, eventadapter.ErrMalformed},
		{"string", `"x"`, 0, eventadapter.ErrMalformed},
		{"truncated array", "[" + one, 0, eventadapter.ErrMalformed},
		{"truncated object", one[:len(one)-3], 0, eventadapter.ErrMalformed},
		{"trailing garbage", "[]x", 0, eventadapter.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventadapter.DecodeBatch([]byte(tt.in))
			if !errorIs(err, tt.wantErr) {
				t.Fatalf("DecodeBatch error = %v, want %v", err, tt.wantErr)
			}
			if len(got) != tt.wantN {
				t.Errorf("DecodeBatch = %d events, want %d", len(got), tt.wantN)
			}
		})
	}
}

// jsonObject reads a fixture holding a JSON object.
func jsonObject(tb testing.TB, name string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(callrectest.Fixture(tb, name), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// errorIs is errors.Is that also accepts a nil want for a nil error.
func errorIs(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return err != nil && errors.Is(err, want)
}
