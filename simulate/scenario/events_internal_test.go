package scenario

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/eventadapter"
	"callrec/internal/callrectest"
)

const testAccount = "ACe268443e43d93dab7ebef303bbe9642f"

// played plays a scenario fast, without a Twilio stand-in.
func played(t *testing.T, sc Scenario) *Call {
	t.Helper()
	c, err := Play(context.Background(), sc, Env{Sink: SinkFunc(func(context.Context, [][]byte) error { return nil }),
		Account: testAccount, Talk: 10 * time.Millisecond, Step: time.Millisecond, Seed: 42})
	if err != nil {
		t.Fatalf("Play %s: %v", sc, err)
	}
	return c
}

// fixtureOf names the fixture of an event type.
func fixtureOf(typ callrec.CTIEventType) string {
	if typ == callrec.EventTaskUpdated {
		return "event-streams/task.updated.conference.json"
	}
	return "event-streams/" + string(typ) + ".json"
}

// keyPaths lists the key paths of a JSON document ("data.payload.sid");
// array elements are "[]". JSON strings holding JSON objects (the task and
// worker attributes) are not entered.
func keyPaths(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			keyPaths(e, p, out)
		}
	case []any:
		for _, e := range x {
			keyPaths(e, prefix+"[]", out)
		}
	}
}

func pathsOf(t *testing.T, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	keyPaths(v, "", m)
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// payloadString returns a string field of data.payload.
func payloadString(t *testing.T, doc []byte, key string) string {
	t.Helper()
	var ev struct {
		Data struct {
			Payload map[string]any `json:"payload"`
		} `json:"data"`
	}
	if err := json.Unmarshal(doc, &ev); err != nil {
		t.Fatal(err)
	}
	s, _ := ev.Data.Payload[key].(string)
	return s
}

// TestEventsMatchFixtures: every event type the scenarios emit has the
// fixture's key paths (envelope, data, data.payload), and its task and
// worker attributes those of the fixture's.
func TestEventsMatchFixtures(t *testing.T) {
	byType := map[callrec.CTIEventType][]byte{}
	var pstn, internal []byte // a task.updated of each kind of call
	for _, sc := range All() {
		c := played(t, sc)
		for _, e := range c.Happened() {
			if sc == AgentToAgent {
				if e.Type == callrec.EventTaskUpdated {
					internal = e.Data
				}
				continue
			}
			if _, ok := byType[e.Type]; !ok {
				byType[e.Type] = e.Data
			}
			if e.Type == callrec.EventTaskUpdated {
				pstn = e.Data
			}
		}
	}
	if len(byType) != 13 || internal == nil {
		t.Fatalf("%d event types", len(byType))
	}
	for typ, doc := range byType {
		fix := callrectest.Fixture(t, fixtureOf(typ))
		if diff := cmp.Diff(pathsOf(t, fix), pathsOf(t, doc)); diff != "" {
			t.Errorf("%s: key paths differ from the fixture (-fixture +built):\n%s", typ, diff)
		}
		for _, attr := range []string{"task_attributes", "worker_attributes"} {
			f, b := payloadString(t, fix, attr), payloadString(t, doc, attr)
			if f == "" && b == "" {
				continue
			}
			built := pathsOf(t, []byte(b))
			if attr == "worker_attributes" {
				// team_name is the one attribute added to the fixture's
				// worker: Flex's documented team attribute, which supervisor
				// scoping reads.
				if !slices.Contains(built, "team_name") {
					t.Errorf("%s: worker_attributes without team_name", typ)
				}
				built = slices.DeleteFunc(built, func(p string) bool { return p == "team_name" })
			}
			if diff := cmp.Diff(pathsOf(t, []byte(f)), built); diff != "" {
				t.Errorf("%s: %s key paths differ from the fixture (-fixture +built):\n%s", typ, attr, diff)
			}
		}
	}
	// An internal call's attributes name both agents as Voice SDK clients.
	ev, err := eventadapter.Decode(internal)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ev.Task.From, "client:alice_2Eagent_40example_2Ecom") || !strings.HasPrefix(ev.Task.To, "client:bob_2E") {
		t.Errorf("internal call from %q to %q", ev.Task.From, ev.Task.To)
	}
	if ev, _ := eventadapter.Decode(pstn); !strings.HasPrefix(ev.Task.From, "+1415555") {
		t.Errorf("PSTN call from %q", ev.Task.From)
	}
}

// TestBuilderReproducesFixtures: given the fixtures' SIDs, times and
// versions, the builder writes the fixtures' events: the same envelope,
// data and payload (task and worker attributes byte for byte), but for
// the event SIDs and ids, which are fresh.
func TestBuilderReproducesFixtures(t *testing.T) {
	const (
		task     = "WTc146b6ad38277b931d94d82f20703136"
		res      = "WR16792ea346317c17b1487d339b1a86ed"
		customer = "CAc0bb2f535401483f8461ddeef83c2d68"
		agentLeg = "CAe5d505d0120c8e5d1c70dcd2ba6bdc06"
		conf     = "CFab3049da9a0cd8d6e8b7c62586752472"
	)
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	alice := &Worker{SID: "WK6384e2b2184bcbf58eccf10ca7a6563c", Identity: "alice.agent@example.com", FullName: "Alice Agent", ReservationSID: res}
	b := newBuilder(testAccount, task, pstnAttributes(testAccount, customer, "+14155550123"))
	b.created, b.queued = at("2025-06-03T14:02:00.000Z"), at("2025-06-03T14:02:00.150Z")
	b.res[res] = &reservation{worker: alice, version: 1}
	b.status, b.taskVersion = "assigned", 2
	accepted := b.event(callrec.EventReservationAccepted, at("2025-06-03T14:02:08.450Z"),
		"Reservation "+res+" accepted by Worker "+alice.SID, res, nil)
	updated := b.conferenceUp(at("2025-06-03T14:02:09.930Z"), conf, customer, agentLeg)

	for _, c := range []struct {
		fixture string
		ev      Event
	}{{"reservation.accepted", accepted}, {"task.updated.conference", updated}} {
		fix := normalize(t, callrectest.Fixture(t, "event-streams/"+c.fixture+".json"))
		got := normalize(t, c.ev.Data)
		if diff := cmp.Diff(fix, got); diff != "" {
			t.Errorf("%s differs from the fixture (-fixture +built):\n%s", c.fixture, diff)
		}
		want, err := eventadapter.Decode(callrectest.Fixture(t, "event-streams/"+c.fixture+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := eventadapter.Decode(c.ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		want.ID, want.Source, ev.ID, ev.Source = "", "", "", ""
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("%s decodes differently from the fixture (-fixture +built):\n%s", c.fixture, diff)
		}
	}
}

// normalize decodes an event and blanks its fresh identifiers.
func normalize(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["id"], m["source"] = "EZ", "source"
	data := m["data"].(map[string]any)
	data["sid"] = "EV"
	data["payload"].(map[string]any)["sid"] = "EV"
	return m
}

func TestEventName(t *testing.T) {
	for typ, want := range map[callrec.CTIEventType]string{
		"reservation.accepted": "ReservationAccepted", "task.transfer-initiated": "TaskTransferInitiated",
		"task.updated": "TaskUpdated", "task.system-deleted": "TaskSystemDeleted",
	} {
		if got := eventName(typ); got != want {
			t.Errorf("eventName(%s) = %s, want %s", typ, got, want)
		}
	}
	if got := clientURI("s-1.alice.agent@example.com"); got != "client:s_2D1_2Ealice_2Eagent_40example_2Ecom" {
		t.Errorf("clientURI = %s", got)
	}
	// The fixture names the data of every event type after it.
	for _, typ := range []callrec.CTIEventType{"reservation.accepted", "task.transfer-completed", "task.canceled"} {
		var ev struct{ Data struct{ Name string } }
		_ = json.Unmarshal(callrectest.Fixture(t, fixtureOf(typ)), &ev)
		if ev.Data.Name != eventName(typ) {
			t.Errorf("fixture %s data.name %s, builder %s", typ, ev.Data.Name, eventName(typ))
		}
	}
	if !slices.Contains(All(), StreamErrorMidCall) || len(All()) != 8 {
		t.Errorf("All() = %v", All())
	}
}
