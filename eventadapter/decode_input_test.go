package eventadapter_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/eventadapter"
	"callrec/internal/callrectest"
)

// mutated returns reservation.accepted.json changed by f, which gets the
// CloudEvent and its data.payload.
func mutated(tb testing.TB, f func(ce, payload map[string]any)) []byte {
	tb.Helper()
	var ce map[string]any
	if err := json.Unmarshal(callrectest.Fixture(tb, "event-streams/reservation.accepted.json"), &ce); err != nil {
		tb.Fatal(err)
	}
	f(ce, ce["data"].(map[string]any)["payload"].(map[string]any))
	b, err := json.Marshal(ce)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestDecode_Inputs(t *testing.T) {
	data := func(ce map[string]any) map[string]any { return ce["data"].(map[string]any) }
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		check   func(t *testing.T, ev callrec.CTIEvent) // on the returned event
	}{
		{name: "not JSON", in: []byte("hello"), wantErr: eventadapter.ErrMalformed},
		{name: "empty", in: nil, wantErr: eventadapter.ErrMalformed},
		{name: "array", in: []byte("[]"), wantErr: eventadapter.ErrMalformed},
		{name: "null", in: []byte("null"), wantErr: eventadapter.ErrMalformed},
		{name: "specversion 0.3", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { ce["specversion"] = "0.3" })},
		{name: "specversion missing", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { delete(ce, "specversion") })},
		{name: "missing id", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { delete(ce, "id") })},
		{name: "missing type", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { delete(ce, "type") })},
		{name: "id not a string", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { ce["id"] = 7 })},
		{name: "non-TaskRouter type", wantErr: eventadapter.ErrNotTaskRouter,
			in: mutated(t, func(ce, _ map[string]any) { ce["type"] = "com.twilio.messaging.inbound-message.received" })},
		{name: "no data", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { delete(ce, "data") })},
		{name: "no payload", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(ce, _ map[string]any) { delete(data(ce), "payload") })},
		{name: "task_attributes not valid JSON", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["task_attributes"] = `{"call_sid":"CA1",` })},
		{name: "task_attributes a JSON array", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["task_attributes"] = `["CA1"]` })},
		{name: "task_attributes a number", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["task_attributes"] = 5 })},
		{name: "worker_attributes not valid JSON", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["worker_attributes"] = "{" })},
		{name: "task_sid not a string", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["task_sid"] = []int{1} })},
		{name: "version not a number", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["task_version"] = "eight" })},
		{name: "version a fraction", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["reservation_version"] = 1.5 })},
		{name: "bad timestamp", wantErr: eventadapter.ErrMalformed,
			in: mutated(t, func(_, p map[string]any) { p["timestamp"] = "yesterday" })},
		{name: "unknown TaskRouter type", wantErr: eventadapter.ErrUnknownType,
			in: mutated(t, func(ce, _ map[string]any) { ce["type"] = "com.twilio.taskrouter.worker.activity.update" }),
			check: func(t *testing.T, ev callrec.CTIEvent) {
				if ev.ID != "EZ5707822729a621a69762ce428e6707c6" || ev.Type != "worker.activity.update" || ev.TaskSID != task || ev.WorkerName == "" {
					t.Errorf("unknown type decoded as %+v", ev)
				}
			}},
		{name: "unknown type and malformed", wantErr: eventadapter.ErrUnknownType,
			in: mutated(t, func(ce, p map[string]any) {
				ce["type"] = "com.twilio.taskrouter.worker.created"
				p["task_attributes"] = "{"
			})},
		{name: "bare prefix", wantErr: eventadapter.ErrUnknownType,
			in: mutated(t, func(ce, _ map[string]any) { ce["type"] = "com.twilio.taskrouter." })},
		{name: "versions as strings", in: mutated(t, func(_, p map[string]any) {
			p["task_version"], p["reservation_version"] = "8", " 9 "
		}), check: func(t *testing.T, ev callrec.CTIEvent) {
			if ev.TaskVersion != 8 || ev.ReservationVersion != 9 {
				t.Errorf("versions = %d, %d; want 8, 9", ev.TaskVersion, ev.ReservationVersion)
			}
		}},
		{name: "versions absent or null", in: mutated(t, func(_, p map[string]any) {
			delete(p, "task_version")
			p["reservation_version"] = nil
		}), check: func(t *testing.T, ev callrec.CTIEvent) {
			if ev.TaskVersion != -1 || ev.ReservationVersion != -1 {
				t.Errorf("versions = %d, %d; want -1, -1", ev.TaskVersion, ev.ReservationVersion)
			}
		}},
		{name: "version 8.0", in: mutated(t, func(_, p map[string]any) { p["task_version"] = 8.0 }),
			check: func(t *testing.T, ev callrec.CTIEvent) {
				if ev.TaskVersion != 8 {
					t.Errorf("TaskVersion = %d, want 8", ev.TaskVersion)
				}
			}},
		{name: "timestamp from data", in: mutated(t, func(ce, p map[string]any) {
			delete(p, "timestamp")
			data(ce)["timestamp"] = "2025-06-03T16:02:08.5+02:00"
		}), check: wantTime(time.Date(2025, 6, 3, 14, 2, 8, 5e8, time.UTC))},
		{name: "timestamp from the CloudEvent", in: mutated(t, func(ce, p map[string]any) {
			delete(p, "timestamp")
			delete(data(ce), "timestamp")
			ce["time"] = "2025-06-03T14:02:09Z"
		}), check: wantTime(time.Date(2025, 6, 3, 14, 2, 9, 0, time.UTC))},
		{name: "account from data", in: mutated(t, func(ce, p map[string]any) {
			delete(p, "account_sid")
			data(ce)["account_sid"] = "ACdata"
		}), check: func(t *testing.T, ev callrec.CTIEvent) {
			if ev.AccountSID != "ACdata" {
				t.Errorf("AccountSID = %q, want ACdata", ev.AccountSID)
			}
		}},
		{name: "attributes absent", in: mutated(t, func(_, p map[string]any) {
			delete(p, "task_attributes")
			p["worker_attributes"] = ""
		}), check: func(t *testing.T, ev callrec.CTIEvent) {
			if diff := cmp.Diff(ev.Task, callrec.TaskAttributes{}); diff != "" {
				t.Errorf("Task (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(ev.Worker, callrec.WorkerAttributes{}); diff != "" {
				t.Errorf("Worker (-got +want):\n%s", diff)
			}
		}},
		{name: "attributes as objects, odd participants", in: mutated(t, func(_, p map[string]any) {
			p["task_attributes"] = map[string]any{"call_sid": 12, "direction": "outbound",
				"conference": map[string]any{"sid": "CF1", "participants": map[string]any{"customer": "CA1", "hold": true, "x": nil}}}
			p["worker_attributes"] = map[string]any{"roles": []any{"agent", 3, "admin"}, "email": false}
		}), check: func(t *testing.T, ev callrec.CTIEvent) {
			want := &callrec.Conference{SID: "CF1", Participants: map[string]string{"customer": "CA1"}}
			if diff := cmp.Diff(ev.Task.Conference, want); diff != "" {
				t.Errorf("Conference (-got +want):\n%s", diff)
			}
			if ev.Task.CallSID != "" || ev.Task.Direction != "outbound" || ev.Task.CustomerCallSID() != "CA1" {
				t.Errorf("Task = %+v", ev.Task)
			}
			if diff := cmp.Diff(ev.Worker.Roles, []string{"agent", "admin"}); diff != "" || ev.Worker.Email != "" {
				t.Errorf("Worker = %+v", ev.Worker)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := eventadapter.Decode(tt.in)
			if !errorIs(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "+1415") {
				t.Errorf("error quotes a phone number: %v", err)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func wantTime(want time.Time) func(*testing.T, callrec.CTIEvent) {
	return func(t *testing.T, ev callrec.CTIEvent) {
		t.Helper()
		if !ev.Time.Equal(want) || ev.Time.Location() != time.UTC {
			t.Errorf("Time = %v, want %v (UTC)", ev.Time, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(callrectest.Root(), "testdata", "twilio", "event-streams", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"specversion":"1.0","id":"x","type":"com.twilio.taskrouter.task.created","data":{"payload":{"task_version":"8","task_attributes":"{\"conference\":{\"participants\":{\"a\":1}}}"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := eventadapter.Decode(b)
		if err == nil && (ev.ID == "" || ev.Type == "") {
			t.Fatalf("Decode accepted an event without id or type: %+v", ev)
		}
		if raws, err := eventadapter.DecodeBatch(b); err == nil {
			for _, raw := range raws {
				_, _ = eventadapter.Decode(raw)
			}
		}
	})
}
