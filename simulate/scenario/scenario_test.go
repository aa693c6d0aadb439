package scenario_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/eventadapter"
	"callrec/simulate"
	"callrec/simulate/scenario"
	"callrec/tracker"
)

const (
	testAccount  = "ACe268443e43d93dab7ebef303bbe9642f"
	workspaceSID = "WS1629dee48cc4e53161f9b2be8614e062" // the fixtures' contact center
	queueSID     = "WQ5b66b75bc906e008c3a9ed130b8b4385"
)

// collector is a Sink that keeps every batch.
type collector struct {
	mu      sync.Mutex
	batches [][][]byte
	onEvent func(ev callrec.CTIEvent) // called for each event, as it arrives
}

func (c *collector) Send(_ context.Context, events [][]byte) error {
	c.mu.Lock()
	c.batches = append(c.batches, events)
	c.mu.Unlock()
	if c.onEvent != nil {
		for _, e := range events {
			ev, err := eventadapter.Decode(e)
			if err != nil {
				return err
			}
			c.onEvent(ev)
		}
	}
	return nil
}

func (c *collector) events() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, b := range c.batches {
		out = append(out, b...)
	}
	return out
}

// quick plays a scenario without a Twilio stand-in, fast.
func quick(t *testing.T, sc scenario.Scenario, sink scenario.Sink) *scenario.Call {
	t.Helper()
	c, err := scenario.Play(context.Background(), sc, scenario.Env{Sink: sink, Account: testAccount, Talk: 10 * time.Millisecond,
		Step: time.Millisecond, Seed: 42})
	if err != nil {
		t.Fatalf("Play %s: %v", sc, err)
	}
	return c
}

// wantTypes are the event types of each scenario, in the order they happen.
var wantTypes = map[scenario.Scenario][]callrec.CTIEventType{
	scenario.Answered: {"task.created", "reservation.created", "reservation.accepted", "task.updated",
		"reservation.wrapup", "task.wrapup", "reservation.completed", "task.completed"},
	scenario.RejectedThenAccepted: {"task.created", "reservation.created", "reservation.rejected", "reservation.created",
		"reservation.accepted", "task.updated", "reservation.wrapup", "task.wrapup", "reservation.completed", "task.completed"},
	scenario.AbandonedInQueue: {"task.created", "reservation.created", "reservation.canceled", "task.canceled"},
	scenario.WarmTransfer: {"task.created", "reservation.created", "reservation.accepted", "task.updated",
		"task.transfer-initiated", "reservation.created", "reservation.accepted", "task.transfer-completed",
		"reservation.wrapup", "reservation.completed", "reservation.wrapup", "task.wrapup", "reservation.completed", "task.completed"},
	scenario.ExternalTransfer: {"task.created", "reservation.created", "reservation.accepted", "task.updated",
		"task.transfer-initiated", "task.transfer-completed", "reservation.wrapup", "task.wrapup",
		"reservation.completed", "task.completed"},
	scenario.AgentToAgent: {"task.created", "reservation.created", "reservation.accepted", "task.updated",
		"reservation.wrapup", "task.wrapup", "reservation.completed", "task.completed"},
}

func init() {
	wantTypes[scenario.DuplicatedReordered] = wantTypes[scenario.Answered]
	wantTypes[scenario.StreamErrorMidCall] = wantTypes[scenario.Answered]
}

var sidRE = regexp.MustCompile(`^[A-Z]{2}[0-9a-f]{32}$`)

func checkSID(t *testing.T, what, sid, prefix string) {
	t.Helper()
	if !sidRE.MatchString(sid) || !strings.HasPrefix(sid, prefix) {
		t.Errorf("%s %q is not a %s SID", what, sid, prefix)
	}
}

// TestPlayEvents: every scenario's events decode to what was meant, with
// consistent SIDs, times and versions, and reach the sink as recorded in
// the Call; fed to the tracker, they make the decisions Expect counts.
func TestPlayEvents(t *testing.T) {
	for _, sc := range scenario.All() {
		t.Run(string(sc), func(t *testing.T) {
			sink := &collector{}
			c := quick(t, sc, sink)
			checkSID(t, "task", c.TaskSID, "WT")
			checkSID(t, "customer call", c.CustomerCall, "CA")
			for _, leg := range c.AgentCalls {
				checkSID(t, "agent call", leg, "CA")
			}
			if c.ConferenceSID != "" {
				checkSID(t, "conference", c.ConferenceSID, "CF")
			}
			for _, w := range c.Workers {
				checkSID(t, "worker", w.SID, "WK")
				if w.ReservationSID != "" {
					checkSID(t, "reservation", w.ReservationSID, "WR")
				}
			}

			// The sink got exactly the events the Call lists, in order.
			got := sink.events()
			if len(got) != len(c.Events) || len(sink.batches) != c.Batches {
				t.Fatalf("sink got %d events in %d batches, the call lists %d in %d", len(got), len(sink.batches), len(c.Events), c.Batches)
			}
			for i := range got {
				if string(got[i]) != string(c.Events[i].Data) {
					t.Fatalf("event %d sent differs from the call's", i)
				}
			}
			if sc != scenario.DuplicatedReordered {
				if !chronological(c.Events) || len(c.Happened()) != len(c.Events) {
					t.Errorf("events sent out of order or repeated")
				}
			}

			happened := c.Happened()
			var types []callrec.CTIEventType
			for _, e := range happened {
				types = append(types, e.Type)
			}
			if !slices.Equal(types, wantTypes[sc]) {
				t.Errorf("event types\n got %v\nwant %v", types, wantTypes[sc])
			}

			resVer := map[string]int64{}
			var last time.Time
			var taskVer int64
			for i, e := range happened {
				checkSID(t, "event id", e.ID, "EZ")
				ev, err := eventadapter.Decode(e.Data)
				if err != nil {
					t.Fatalf("event %d (%s): %v", i, e.Type, err)
				}
				if ev.ID != e.ID || ev.Type != e.Type || !ev.Time.Equal(e.Time) || ev.TaskVersion != e.TaskVersion ||
					ev.ReservationSID != e.ReservationSID || ev.ReservationVersion != e.ReservationVersion {
					t.Errorf("event %d decodes to %s %s %v task v%d res %s v%d; the call says %+v", i, ev.ID, ev.Type, ev.Time,
						ev.TaskVersion, ev.ReservationSID, ev.ReservationVersion, e)
				}
				if ev.AccountSID != testAccount || ev.WorkspaceSID != workspaceSID || ev.TaskSID != c.TaskSID ||
					ev.TaskChannel != "voice" || ev.TaskQueueSID != queueSID {
					t.Errorf("event %d (%s): account %s workspace %s task %s channel %s queue %s", i, e.Type,
						ev.AccountSID, ev.WorkspaceSID, ev.TaskSID, ev.TaskChannel, ev.TaskQueueSID)
				}
				if got := ev.Task.CustomerCallSID(); got != c.CustomerCall {
					t.Errorf("event %d (%s): customer call %s, want %s", i, e.Type, got, c.CustomerCall)
				}
				if conf := ev.Task.Conference; conf != nil {
					if conf.SID != c.ConferenceSID || conf.Participants["customer"] != c.CustomerCall ||
						!slices.Contains(c.AgentCalls, conf.Participants["worker"]) {
						t.Errorf("event %d (%s): conference %+v; call %s customer %s agents %v", i, e.Type, conf,
							c.ConferenceSID, c.CustomerCall, c.AgentCalls)
					}
				}
				// Times strictly increase; the task version never goes back.
				if !ev.Time.After(last) || ev.TaskVersion < taskVer || ev.TaskVersion < 1 {
					t.Errorf("event %d (%s) at %v task v%d after %v v%d", i, e.Type, ev.Time, ev.TaskVersion, last, taskVer)
				}
				last, taskVer = ev.Time, ev.TaskVersion
				if e.ReservationSID != "" {
					w := workerOf(c, e.ReservationSID)
					if w == nil || ev.WorkerSID != w.SID || ev.WorkerName != w.Identity || ev.Worker.Email != w.Identity ||
						ev.Worker.FullName != w.FullName {
						t.Errorf("event %d (%s): worker %s %s of reservation %s; call workers %v", i, e.Type, ev.WorkerSID,
							ev.WorkerName, e.ReservationSID, c.Workers)
					}
					prev, seen := resVer[e.ReservationSID]
					isTransfer := strings.HasPrefix(string(e.Type), "task.transfer-")
					switch {
					case e.Type == callrec.EventReservationCreated && (seen || ev.ReservationVersion != 0):
						t.Errorf("event %d: reservation.created v%d", i, ev.ReservationVersion)
					case e.Type != callrec.EventReservationCreated && !isTransfer && ev.ReservationVersion != prev+1:
						t.Errorf("event %d (%s): reservation v%d after v%d", i, e.Type, ev.ReservationVersion, prev)
					case isTransfer && ev.ReservationVersion != prev:
						t.Errorf("event %d (%s): reservation v%d, the reservation is at v%d", i, e.Type, ev.ReservationVersion, prev)
					}
					resVer[e.ReservationSID] = ev.ReservationVersion
				}
				if strings.HasPrefix(string(e.Type), "task.transfer-") {
					x := ev.Transfer
					if x == nil || !strings.HasPrefix(x.SID, "TT") || x.InitiatingWorkerSID != c.Workers[0].SID ||
						x.InitiatingReservationSID != c.Workers[0].ReservationSID || x.Status != strings.TrimPrefix(string(e.Type), "task.transfer-") {
						t.Errorf("event %d (%s): transfer %+v", i, e.Type, x)
					}
				}
			}

			// The tracker, fed the events as sent, decides what Expect says.
			st := tracker.NewState(tracker.Rules{})
			var starts, stops int
			var firstRes string
			for _, e := range c.Events {
				ev, _ := eventadapter.Decode(e.Data)
				for _, d := range tracker.Effective(st.Apply(ev)) {
					switch d.Kind {
					case tracker.StartStream:
						starts++
						if firstRes == "" {
							firstRes = d.ReservationSID
						}
					case tracker.StopStream:
						stops++
					}
				}
			}
			x := c.Expect
			if starts != x.Starts-x.StreamErrors || stops != x.Stops {
				t.Errorf("tracker decided %d starts and %d stops; expected %d (+%d restarts) and %d", starts, stops,
					x.Starts-x.StreamErrors, x.StreamErrors, x.Stops)
			}
			if x.Recorded != (starts > 0) {
				t.Errorf("Expect.Recorded %v, but the tracker started %d streams", x.Recorded, starts)
			}
			if x.Recorded {
				if w := c.Worker(x.Agents[0]); w == nil || w.ReservationSID != firstRes {
					t.Errorf("first stream for reservation %s, want that of %s", firstRes, x.Agents[0])
				}
			}
			contact, _ := st.Contact(c.TaskSID)
			var answered []string
			for _, conn := range contact.Connections {
				if !conn.AnsweredAt.IsZero() {
					answered = append(answered, conn.AgentExtension)
				}
			}
			if !slices.Equal(answered, x.Agents) {
				t.Errorf("agents who answered %v, Expect.Agents %v", answered, x.Agents)
			}
		})
	}
}

func workerOf(c *scenario.Call, res string) *scenario.Worker {
	for _, w := range c.Workers {
		if w.ReservationSID == res {
			return w
		}
	}
	return nil
}

// chronological reports whether events are in the order they happened.
func chronological(evs []scenario.Event) bool {
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq < evs[i-1].Seq {
			return false
		}
	}
	return true
}

// TestDuplicatedReordered: every event goes out exactly twice, not in the
// order the events happened, over several batches; the seed makes it
// reproducible.
func TestDuplicatedReordered(t *testing.T) {
	c := quick(t, scenario.DuplicatedReordered, &collector{})
	n := map[string]int{}
	for _, e := range c.Events {
		n[e.ID]++
	}
	for id, k := range n {
		if k != 2 {
			t.Errorf("event %s sent %d times, want 2", id, k)
		}
	}
	if len(n) != len(wantTypes[scenario.Answered]) {
		t.Errorf("%d distinct events, want %d", len(n), len(wantTypes[scenario.Answered]))
	}
	if chronological(c.Events) {
		t.Error("events sent in the order they happened")
	}
	if c.Batches < 3 {
		t.Errorf("%d batches", c.Batches)
	}
	again := quick(t, scenario.DuplicatedReordered, &collector{})
	order := func(c *scenario.Call) []int {
		var out []int
		for _, e := range c.Events {
			out = append(out, e.Seq)
		}
		return out
	}
	if !slices.Equal(order(c), order(again)) {
		t.Errorf("same seed, different orders: %v and %v", order(c), order(again))
	}
}

// TestPlayRegistersCallsFirst: when the accept that makes a recorder start
// a stream arrives, the customer's call is live at the Twilio stand-in and
// the conference lists the customer and the agent; after Play, the
// customer has hung up.
func TestPlayRegistersCallsFirst(t *testing.T) {
	for _, sc := range scenario.All() {
		if sc == scenario.StreamErrorMidCall {
			continue // needs a recorder to cut the stream of
		}
		t.Run(string(sc), func(t *testing.T) {
			tw := simulate.NewTwilio(testAccount, "token", simulate.Config{URL: "ws://unused"})
			t.Cleanup(tw.Close)
			var c *scenario.Call
			var mu sync.Mutex
			var checked int
			sink := &collector{onEvent: func(ev callrec.CTIEvent) {
				switch {
				case ev.Type == callrec.EventReservationAccepted:
					mu.Lock()
					checked++
					mu.Unlock()
					call := ev.Task.CustomerCallSID()
					if code := startStream(tw, call); code != http.StatusOK {
						t.Errorf("Start Stream on the customer's call %s when %s arrived: %d", call, ev.Type, code)
					}
				case ev.Type == callrec.EventTaskUpdated && ev.Task.Conference != nil:
					conf := ev.Task.Conference
					ps := participants(t, tw, conf.SID)
					if ps[conf.Participants["customer"]] != "customer" || ps[conf.Participants["worker"]] != "worker" {
						t.Errorf("conference %s participants %v, the task says %v", conf.SID, ps, conf.Participants)
					}
				}
			}}
			var err error
			c, err = scenario.Play(context.Background(), sc, scenario.Env{Sink: sink, Twilio: tw, Account: testAccount,
				Talk: 20 * time.Millisecond, Step: time.Millisecond, Settle: time.Second, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			if want := c.Expect.Agents; checked < len(want) {
				t.Errorf("%d accepts checked, want %d", checked, len(want))
			}
			if c.ConferenceSID != "" {
				ps := participants(t, tw, c.ConferenceSID)
				if len(ps) != 0 {
					t.Errorf("participants left after the hang-up: %v", ps)
				}
			}
			if code := startStream(tw, c.CustomerCall); code != http.StatusBadRequest {
				t.Errorf("Start Stream after the hang-up: %d, want 400 (call not in progress)", code)
			}
		})
	}
}

// startStream calls the stand-in's Start Stream API; the stream dials a
// closed port and fails at once.
func startStream(tw *simulate.Twilio, call string) int {
	form := url.Values{"Url": {"ws://127.0.0.1:1/media"}, "Track": {"both_tracks"}}
	req := httptest.NewRequest(http.MethodPost, "/2010-04-01/Accounts/"+testAccount+"/Calls/"+call+"/Streams.json",
		strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testAccount, "token")
	w := httptest.NewRecorder()
	tw.ServeHTTP(w, req)
	return w.Code
}

func participants(t *testing.T, tw *simulate.Twilio, conf string) map[string]string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/2010-04-01/Accounts/"+testAccount+"/Conferences/"+conf+"/Participants.json", nil)
	req.SetBasicAuth(testAccount, "token")
	w := httptest.NewRecorder()
	tw.ServeHTTP(w, req)
	var list struct {
		Participants []struct {
			CallSID string `json:"call_sid"`
			Label   string `json:"label"`
		} `json:"participants"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || w.Code != http.StatusOK {
		t.Fatalf("participants of %s: %d %v", conf, w.Code, err)
	}
	out := map[string]string{}
	for _, p := range list.Participants {
		out[p.CallSID] = p.Label
	}
	return out
}

func TestPlayErrors(t *testing.T) {
	if _, err := scenario.Play(context.Background(), "nope", scenario.Env{Sink: &collector{}}); err == nil {
		t.Error("unknown scenario played")
	}
	if _, err := scenario.Play(context.Background(), scenario.Answered, scenario.Env{}); err == nil {
		t.Error("played without a sink")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := scenario.Play(ctx, scenario.Answered, scenario.Env{Sink: &collector{}, Talk: time.Hour})
	if err == nil || c == nil {
		t.Errorf("cancelled Play: %v, %v", c, err)
	}
	failing := scenario.SinkFunc(func(context.Context, [][]byte) error { return fmt.Errorf("down") })
	if _, err := scenario.Play(context.Background(), scenario.Answered, scenario.Env{Sink: failing}); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("sink failure: %v", err)
	}
}

// TestExpectOrders: with dual streams every decision is two streams, and
// a failed stream is replaced alone.
func TestExpectOrders(t *testing.T) {
	for _, tt := range []struct {
		x                  scenario.Expect
		copies             int
		wantStart, wantEnd int
	}{
		{scenario.Expect{Starts: 1, Stops: 1}, 1, 1, 1},
		{scenario.Expect{Starts: 1, Stops: 1}, 0, 1, 1},
		{scenario.Expect{Starts: 1, Stops: 1}, 2, 2, 2},
		{scenario.Expect{Starts: 2, Stops: 1, StreamErrors: 1}, 1, 2, 1},
		{scenario.Expect{Starts: 2, Stops: 1, StreamErrors: 1}, 2, 3, 2},
		{scenario.Expect{}, 2, 0, 0},
	} {
		if s, e := tt.x.Orders(tt.copies); s != tt.wantStart || e != tt.wantEnd {
			t.Errorf("%+v.Orders(%d) = %d, %d; want %d, %d", tt.x, tt.copies, s, e, tt.wantStart, tt.wantEnd)
		}
	}
}

// TestStreamOrders counts one call's successful stream requests only, and
// reads the copies from its streams' parameters.
func TestStreamOrders(t *testing.T) {
	// The streams dial a server that accepts and never answers: they stay
	// live (their names taken) for the whole test, whereas a refused dial
	// would end them, and free their names, at a moment of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	tw := simulate.NewTwilio(testAccount, "token", simulate.Config{URL: "ws://unused"})
	t.Cleanup(func() {
		ln.Close()
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
		tw.Close()
	})
	mine := &scenario.Call{CustomerCall: "CA00000000000000000000000000000001"}
	const other = "CA00000000000000000000000000000002"
	tw.AddCall(mine.CustomerCall)
	tw.AddCall(other)
	create := func(call, name string, copies string) int {
		form := url.Values{"Url": {"ws://" + ln.Addr().String() + "/media/pair/g/1"}, "Track": {"inbound_track"}, "Name": {name}}
		if copies != "" {
			form.Set("Parameter1.Name", "copies")
			form.Set("Parameter1.Value", copies)
		}
		req := httptest.NewRequest(http.MethodPost, "/2010-04-01/Accounts/"+testAccount+"/Calls/"+call+"/Streams.json", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(testAccount, "token")
		w := httptest.NewRecorder()
		tw.ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		call, name, copies string
		code               int
	}{
		{mine.CustomerCall, "rec-c1", "2", 200},
		{mine.CustomerCall, "rec-c2", "2", 200},
		{mine.CustomerCall, "rec-c2", "2", 400}, // the name is taken: not counted
		{other, "rec-x", "", 200},
		{other, "rec-y", "", 200},
		{other, "rec-z", "", 200},
	} {
		if code := create(c.call, c.name, c.copies); code != c.code {
			t.Fatalf("create %s on %s: %d, want %d", c.name, c.call, code, c.code)
		}
	}
	if starts, stops, copies := mine.StreamOrders(tw); starts != 2 || stops != 0 || copies != 2 {
		t.Errorf("StreamOrders = %d, %d, %d; want 2, 0, 2", starts, stops, copies)
	}
	if starts, _, copies := (&scenario.Call{CustomerCall: other}).StreamOrders(tw); starts != 3 || copies != 1 {
		t.Errorf("other call: %d starts, %d copies; want 3, 1", starts, copies)
	}
}
