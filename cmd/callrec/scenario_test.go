package main

import (
	"bufio"
	kinesis "callrec/eventadapter/kinesis"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/join"
	"callrec/consolidation/store"
	"callrec/consolidation/web"
	"callrec/internal/callrectest"
	"callrec/internal/twiliotest"
	"callrec/simulate"
	"callrec/simulate/scenario"
)

// TestScenarios plays every Flex call of simulate/scenario end to end: a
// `callrec run` with the CTI path on, its events through the signed
// webhook sink, and the simulator as Twilio's API (calls, conference,
// Media Streams with real audio, the hang-up). Each scenario checks that
// the recorder made exactly the Start and Stop Stream requests expected,
// recorded the customer's call and nothing else (or nothing at all),
// tagged the recording with the task, reservation and agent of the first
// agent, and wrote exactly the audio the simulator sent.
func TestScenarios(t *testing.T) {
	for i, sc := range scenario.All() {
		t.Run(string(sc), func(t *testing.T) {
			t.Parallel()
			scenarioE2E(t, sc, int64(i+1), false)
		})
	}
}

// TestScenariosViaKinesis plays calls whose events go through a real
// Kinesis stream (kinesis-local, two shards, random partition keys, so a
// call's events arrive out of order across shards).
func TestScenariosViaKinesis(t *testing.T) {
	for i, sc := range []scenario.Scenario{scenario.Answered, scenario.WarmTransfer, scenario.DuplicatedReordered} {
		t.Run(string(sc), func(t *testing.T) {
			t.Parallel()
			scenarioE2E(t, sc, int64(i+100), true)
		})
	}
}

func scenarioE2E(t *testing.T, sc scenario.Scenario, seed int64, viaKinesis bool) {
	tw, apiURL := simTwilio(t)
	cfg := testConfig(t)
	cfg.CTI = ctiConfig{AccountSID: fixtureAccount, APIURL: apiURL}
	var sink scenario.Sink
	if viaKinesis {
		kcfg := kinesisForTest(t)
		cfg.CTI.Kinesis, cfg.CTI.DisableWebhook = kcfg, true
		pub, err := kinesis.NewPublisher(t.Context(), kcfg)
		if err != nil {
			t.Fatal(err)
		}
		sink = pub
	}
	s := startRun(t, cfg)
	if sink == nil {
		sink = &scenario.WebhookSink{URL: s.HTTPURL + "/twilio/events", AuthToken: testToken}
	}
	call, err := scenario.Play(callrectest.Context(t), sc, scenario.Env{Sink: sink, Twilio: tw, Account: fixtureAccount,
		Talk: time.Second, Seed: seed})
	if err != nil {
		t.Fatalf("play %s: %v", sc, err)
	}
	x := call.Expect
	t.Logf("task %s, customer call %s, agents %v: %d events in %d batches", call.TaskSID, call.CustomerCall, x.Agents,
		len(call.Events), call.Batches)

	// Twilio got exactly the stream orders expected, all on the customer's
	// call.
	callrectest.Eventually(t, 10*time.Second, "the expected Start and Stop Stream requests", func() bool {
		starts, stops := scenarioStreamOrders(tw)
		return starts >= x.Starts && stops >= x.Stops
	})
	// The webhook (or the Kinesis source) hands every event to the tracker,
	// which saves its orders before answering; once the Stream Manager has
	// none pending, no further request can come.
	callrectest.Eventually(t, 10*time.Second, "no stream order pending", func() bool {
		p, err := s.cti.trStore.Pending(t.Context())
		return err == nil && len(p) == 0
	})
	if starts, stops := scenarioStreamOrders(tw); starts != x.Starts || stops != x.Stops {
		t.Errorf("%d successful Start and %d Stop Stream requests, want %d and %d; requests:\n%s",
			starts, stops, x.Starts, x.Stops, scenarioRequests(tw))
	}
	for _, r := range tw.Requests() {
		if r.Op == twiliotest.OpCreateStream && r.Status == http.StatusOK &&
			(!strings.Contains(r.Path, "/Calls/"+call.CustomerCall+"/") || r.Form["Track"] != "both_tracks" || r.Form["Url"] != s.cfg.Media.PublicURL) {
			t.Errorf("Start Stream %s %v: want both tracks of the customer's call %s to %s", r.Path, r.Form, call.CustomerCall, s.cfg.Media.PublicURL)
		}
	}

	// The customer's call is recorded, and nothing else; every recording
	// is finished.
	var recs []callrec.Recording
	callrectest.Eventually(t, 10*time.Second, "every recording finished", func() bool {
		recs = scenarioRecordings(t, s, "")
		if len(recs) != x.Starts {
			return false
		}
		for _, r := range recs {
			if r.State == callrec.StateRecording {
				return false
			}
		}
		return true
	})
	if x.Recorded != (len(recs) > 0) {
		t.Errorf("%d recordings; recorded should be %v", len(recs), x.Recorded)
	}
	if n := len(scenarioRecordings(t, s, call.CustomerCall)); n != x.Starts {
		t.Errorf("%d recordings of the customer's call, want %d", n, x.Starts)
	}
	for _, leg := range call.AgentCalls {
		if n := len(scenarioRecordings(t, s, leg)); n != 0 {
			t.Errorf("%d recordings of the agent's or outside party's leg %s", n, leg)
		}
	}
	scenarioJoined(t, s, call)
	if !x.Recorded {
		return
	}
	first := call.Worker(x.Agents[0])
	want := map[string]string{"task_sid": call.TaskSID, "reservation_sid": first.ReservationSID,
		"worker_sid": first.SID, "agent": first.Identity, "leg": "customer"}
	var complete, interrupted int
	for i := range recs {
		rec := &recs[i]
		if rec.Stream.CallSID != call.CustomerCall {
			t.Errorf("recording %s of call %s", rec.INUM, rec.Stream.CallSID)
		}
		for k, v := range want {
			if got := rec.Stream.CustomParameters[k]; got != v {
				t.Errorf("recording %s: parameter %s = %q, want %q", rec.INUM, k, got, v)
			}
		}
		switch rec.State {
		case callrec.StateComplete:
			complete++
		case callrec.StateInterrupted:
			interrupted++
			if rec.Stream.StreamSID != call.CutStream || rec.EndReason != callrec.EndSocketClosed {
				t.Errorf("recording %s of %s interrupted (%s); the simulator cut %q", rec.INUM, rec.Stream.StreamSID, rec.EndReason, call.CutStream)
			}
			continue
		}
		// A complete recording holds exactly the audio sent.
		var sent simulate.CallResult
		callrectest.Eventually(t, 5*time.Second, "the simulator's result of "+rec.Stream.StreamSID, func() bool {
			var ok bool
			sent, ok = tw.Results()[rec.Stream.StreamSID]
			return ok
		})
		in, out := sent.Tracks[callrec.TrackInbound].Timeline, sent.Tracks[callrec.TrackOutbound].Timeline
		if len(in) < 25*simulate.FrameBytes || len(out) < 25*simulate.FrameBytes {
			t.Errorf("recording %s: only %d and %d bytes of audio sent", rec.INUM, len(in), len(out))
		}
		left, right := audio(t, s, rec)
		if err := sameAudio(left, in); err != nil {
			t.Errorf("recording %s, inbound: %v", rec.INUM, err)
		}
		if err := sameAudio(right, out); err != nil {
			t.Errorf("recording %s, outbound: %v", rec.INUM, err)
		}
	}
	if complete != x.Starts-x.StreamErrors || interrupted != x.StreamErrors {
		t.Errorf("%d complete and %d interrupted recordings, want %d and %d", complete, interrupted, x.Starts-x.StreamErrors, x.StreamErrors)
	}
	if got := scenarioMetric(t, s, `callrec_stream_status_callbacks_total{event="stream-error"}`); got != x.StreamErrors {
		t.Errorf("%d stream-error callbacks received, want %d", got, x.StreamErrors)
	}
}

// scenarioStreamOrders counts the Start and Stop Stream requests Twilio
// answered with 200.
func scenarioStreamOrders(tw *simulate.Twilio) (starts, stops int) {
	for _, r := range tw.Requests() {
		switch {
		case r.Op == twiliotest.OpCreateStream && r.Status == http.StatusOK:
			starts++
		case r.Op == twiliotest.OpStopStream && r.Status == http.StatusOK:
			stops++
		}
	}
	return starts, stops
}

// scenarioRequests lists the requests Twilio got, for failure messages.
func scenarioRequests(tw *simulate.Twilio) string {
	var b strings.Builder
	for _, r := range tw.Requests() {
		fmt.Fprintf(&b, "  %s %s %s → %d (name %q)\n", r.Op, r.Method, r.Path, r.Status, r.Form["Name"])
	}
	return b.String()
}

// scenarioRecordings lists the recordings, of one call if callSID is set.
func scenarioRecordings(t *testing.T, s *system, callSID string) []callrec.Recording {
	t.Helper()
	var list struct{ Recordings []callrec.Recording }
	u := s.HTTPURL + "/api/recordings"
	if callSID != "" {
		u += "?call_sid=" + callSID
	}
	if code := getJSON(t, u, &list); code != http.StatusOK {
		t.Fatalf("GET %s: %d", u, code)
	}
	return list.Recordings
}

// scenarioMetric reads a counter from /metrics (0 when absent).
func scenarioMetric(t *testing.T, s *system, series string) int {
	t.Helper()
	v, err := readMetric(s.HTTPURL, series)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// readMetric reads one sample (name and labels as exposed) from
// baseURL/metrics; 0 when absent.
func readMetric(baseURL, series string) (float64, error) {
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s: %q", series, v)
			}
			return f, nil
		}
	}
	return 0, sc.Err()
}

// scenarioJoined checks consolidation's call record of a played call: the
// right agents, teams and agent segments, each segment on a recording, the
// recordings and completeness, the timeline, and that a search by agent
// finds it.
func scenarioJoined(t *testing.T, s *system, call *scenario.Call) {
	t.Helper()
	x := call.Expect
	var d web.Detail
	u := s.HTTPURL + "/api/interactions/" + url.PathEscape(call.TaskSID)
	callrectest.Eventually(t, 10*time.Second, "the call record joined", func() bool {
		d = web.Detail{}
		if getJSON(t, u, &d) != http.StatusOK || d.Contact == nil {
			return false
		}
		end := d.Contact.Status == callrec.ContactEnded || d.Contact.Status == callrec.ContactAbandoned
		return end && len(d.Interaction.INUMs) == x.Starts && d.Interaction.Status != store.StatusRecording
	})
	in := d.Interaction
	if in.CallSID != call.CustomerCall {
		t.Errorf("call record: call SID %s, want %s", in.CallSID, call.CustomerCall)
	}
	if !x.Recorded {
		if in.Status != store.StatusComplete || !slices.Contains(in.Tags, join.TagNotRecorded) || len(in.INUMs) != 0 {
			t.Errorf("unrecorded call: status %s, tags %v, INUMs %v; want complete, %s, none", in.Status, in.Tags, in.INUMs, join.TagNotRecorded)
		}
		return
	}
	if !slices.Equal(in.Agents, x.Agents) {
		t.Errorf("call record agents %v, want %v", in.Agents, x.Agents)
	}
	var segAgents []string
	for _, sg := range in.Segments {
		segAgents = append(segAgents, sg.Agent)
		w := call.Worker(sg.Agent)
		if w == nil || sg.ReservationSID != w.ReservationSID || sg.WorkerSID != w.SID || sg.Team != w.Team {
			t.Errorf("segment %+v does not match the worker %+v", sg, w)
		}
		if w != nil && !slices.Contains(in.Teams, w.Team) {
			t.Errorf("call record teams %v lack %s's team %s", in.Teams, sg.Agent, w.Team)
		}
		if !sg.Recorded || !slices.Contains(in.INUMs, sg.INUM) || sg.End.Before(sg.Start) {
			t.Errorf("segment of %s: recorded %v on %s (%s–%s); the call's recordings are %v", sg.Agent, sg.Recorded, sg.INUM, sg.Start, sg.End, in.INUMs)
		}
	}
	if !slices.Equal(segAgents, x.Agents) {
		t.Errorf("segments of %v, want one per agent %v", segAgents, x.Agents)
	}
	wantStatus := store.StatusComplete
	if x.StreamErrors > 0 {
		wantStatus = store.StatusPartial
		if !slices.Contains(in.Tags, join.TagRestarted) {
			t.Errorf("tags %v: want %s", in.Tags, join.TagRestarted)
		}
	}
	if in.Status != wantStatus {
		t.Errorf("call record status %s, want %s", in.Status, wantStatus)
	}
	if len(d.Recordings) != x.Starts || len(d.Unavailable) != 0 {
		t.Errorf("%d recordings in the call detail (%d unavailable), want %d", len(d.Recordings), len(d.Unavailable), x.Starts)
	}
	kinds := map[string]int{}
	for _, e := range d.Timeline {
		kinds[e.Kind]++
	}
	if kinds["answered"] != len(x.Agents) || kinds["recording_started"] != 1 || kinds["restart"] != x.StreamErrors {
		t.Errorf("timeline kinds %v: want %d answered, 1 recording_started, %d restart", kinds, len(x.Agents), x.StreamErrors)
	}
	var res struct {
		Items []store.Interaction
		Total int
	}
	q := url.Values{"agent": {x.Agents[len(x.Agents)-1]}, "task_sid": {call.TaskSID}}
	if code := getJSON(t, s.HTTPURL+"/api/interactions?"+q.Encode(), &res); code != http.StatusOK || res.Total != 1 || res.Items[0].ID != call.TaskSID {
		t.Errorf("search by agent: %d, %+v", code, res)
	}
}
