package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"callrec"
	eakinesis "callrec/eventadapter/kinesis"
	"callrec/internal/callrectest"
	"callrec/internal/servicetest"
	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
	"callrec/simulate"
)

const (
	fixtureAccount = "ACe268443e43d93dab7ebef303bbe9642f"
	fixtureTask    = "WTc146b6ad38277b931d94d82f20703136"
	fixtureCall    = "CAc0bb2f535401483f8461ddeef83c2d68"
)

// postEvents sends a signed Event Streams webhook batch, as Twilio does.
func postEvents(t *testing.T, s *system, names ...string) int {
	t.Helper()
	return postEventsTo(t, s.HTTPURL, names...)
}

// postEventsTo sends a signed webhook batch to base + /twilio/events.
func postEventsTo(t *testing.T, base string, names ...string) int {
	t.Helper()
	var batch []json.RawMessage
	for _, n := range names {
		batch = append(batch, callrectest.Fixture(t, "event-streams/"+n+".json"))
	}
	body, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	u := base + "/twilio/events?bodySHA256=" + hex.EncodeToString(sum[:])
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(twilio.SignatureHeader, twilio.Sign(testToken, u, nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// simTwilio serves the simulator's Twilio REST API (with the audio it sends
// kept) until the test ends, and returns it and its URL.
func simTwilio(t *testing.T) (*simulate.Twilio, string) {
	t.Helper()
	tw := simulate.NewTwilio(fixtureAccount, testToken, simulate.Config{URL: "ws://unused", Duration: time.Minute, KeepAudio: true})
	api := httptest.NewServer(tw)
	t.Cleanup(api.Close)
	t.Cleanup(tw.Close)
	return tw, api.URL
}

// recordingInProgress waits until the call's one recording has received
// audio, and returns it.
func recordingInProgress(t *testing.T, s *system, callSID string) callrec.Recording {
	t.Helper()
	var rec callrec.Recording
	callrectest.Eventually(t, 20*time.Second, "the call "+callSID+" is being recorded", func() bool {
		var list struct{ Recordings []callrec.Recording }
		getJSON(t, s.HTTPURL+"/api/recordings?call_sid="+callSID, &list)
		if len(list.Recordings) == 1 && list.Recordings[0].Accounting.Messages.MediaSeen > 20 {
			rec = list.Recordings[0]
			return true
		}
		return false
	})
	return rec
}

// TestCTIAnsweredCall: Event Streams in through the signed webhook; the
// tracker starts the customer leg's stream when the agent accepts (through
// the simulator's Twilio API, which opens the Media Stream back into us) and
// stops it at wrap-up; the recording is tagged with task, reservation and
// agent; redelivered events change nothing.
func TestCTIAnsweredCall(t *testing.T) {
	tw, apiURL := simTwilio(t)
	tw.AddCall(fixtureCall)
	cfg := testConfig(t)
	cfg.CTI = ctiConfig{AccountSID: fixtureAccount, APIURL: apiURL}
	s := startRun(t, cfg)

	if code := postEvents(t, s, "task.created", "reservation.created", "reservation.accepted"); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	rec := recordingInProgress(t, s, fixtureCall)
	want := map[string]string{"task_sid": fixtureTask, "reservation_sid": "WR16792ea346317c17b1487d339b1a86ed",
		"worker_sid": "WK6384e2b2184bcbf58eccf10ca7a6563c", "agent": "alice.agent@example.com", "stream_name": "rec-" + fixtureTask, "leg": "customer"}
	for k, v := range want {
		if got := rec.Stream.CustomParameters[k]; got != v {
			t.Errorf("recording parameter %s = %q, want %q", k, got, v)
		}
	}
	// Event Streams redelivers: nothing more happens.
	if code := postEvents(t, s, "task.created", "reservation.created", "reservation.accepted"); code != http.StatusOK {
		t.Fatalf("webhook answered %d to a redelivery", code)
	}
	if code := postEvents(t, s, "task.updated.conference", "reservation.wrapup", "reservation.completed", "task.wrapup", "task.completed"); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	done := finished(t, s, rec.Stream.StreamSID)
	if done.State != callrec.StateComplete || done.EndReason != callrec.EndStop {
		t.Errorf("recording %s/%s, want complete by stop", done.State, done.EndReason)
	}
	var creates, stops int
	for _, r := range tw.Requests() {
		switch {
		case r.Op == twiliotest.OpCreateStream && r.Status == 200:
			creates++
			if r.Form["Track"] != "both_tracks" || r.Form["Url"] != s.cfg.Media.PublicURL || r.Form["Name"] != "rec-"+fixtureTask {
				t.Errorf("Start Stream request %v", r.Form)
			}
		case r.Op == twiliotest.OpStopStream && r.Status == 200:
			stops++
		}
	}
	if creates != 1 || stops != 1 {
		t.Errorf("%d Start and %d Stop Stream requests, want exactly one each", creates, stops)
	}
	// A webhook request with a wrong signature is refused.
	req, _ := http.NewRequest(http.MethodPost, s.HTTPURL+"/twilio/events?bodySHA256=00", bytes.NewReader([]byte("[]")))
	req.Header.Set(twilio.SignatureHeader, "bogus")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned webhook answered %d, want 403", resp.StatusCode)
	}
}

// TestCTIStreamErrorRestart: the Media Stream dies mid-call (Twilio reports
// stream-error); the tracker starts a replacement on the same call, whose
// recording names the stream it replaces; wrap-up stops the replacement.
func TestCTIStreamErrorRestart(t *testing.T) {
	tw, apiURL := simTwilio(t)
	tw.AddCall(fixtureCall)
	cfg := testConfig(t)
	cfg.CTI = ctiConfig{AccountSID: fixtureAccount, APIURL: apiURL}
	s := startRun(t, cfg)
	if code := postEvents(t, s, "task.created", "reservation.created", "reservation.accepted"); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	recordings := func() []callrec.Recording {
		var list struct{ Recordings []callrec.Recording }
		getJSON(t, s.HTTPURL+"/api/recordings?call_sid="+fixtureCall, &list)
		return list.Recordings
	}
	first := recordingInProgress(t, s, fixtureCall)
	if !tw.Cut(first.Stream.StreamSID) {
		t.Fatal("stream not running in the simulator")
	}
	var second callrec.Recording
	callrectest.Eventually(t, 15*time.Second, "replacement stream recording", func() bool {
		for _, r := range recordings() {
			if r.INUM != first.INUM && r.Accounting.Messages.MediaSeen > 20 {
				second = r
				return true
			}
		}
		return false
	})
	if got := second.Stream.CustomParameters; got["restart_of"] != first.Stream.StreamSID || got["task_sid"] != fixtureTask || got["restart"] != "1" {
		t.Errorf("replacement parameters %v", got)
	}
	if r := finished(t, s, first.Stream.StreamSID); r.State != callrec.StateInterrupted || r.EndReason != callrec.EndSocketClosed {
		t.Errorf("first recording %s/%s, want interrupted/socket_closed", r.State, r.EndReason)
	}
	if code := postEvents(t, s, "reservation.wrapup", "reservation.completed", "task.completed"); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	if r := finished(t, s, second.Stream.StreamSID); r.State != callrec.StateComplete {
		t.Errorf("replacement recording %s/%s, want complete", r.State, r.EndReason)
	}
	var creates, stops int
	for _, r := range tw.Requests() {
		if r.Status == 200 && r.Op == twiliotest.OpCreateStream {
			creates++
		}
		if r.Status == 200 && r.Op == twiliotest.OpStopStream {
			stops++
			if r.Path[len(r.Path)-len("-restart1.json"):] != "-restart1.json" {
				t.Errorf("stop went to %s, not the replacement", r.Path)
			}
		}
	}
	if creates != 2 || stops != 1 {
		t.Errorf("%d Start and %d Stop Stream requests, want 2 and 1", creates, stops)
	}
}

// kinesisForTest starts kinesis-local with a fresh two-shard stream and
// returns the source configuration for it.
func kinesisForTest(t *testing.T) eakinesis.Config {
	t.Helper()
	endpoint := servicetest.StartKinesis(t)
	kc := servicetest.NewKinesisClient(t, endpoint)
	ctx := t.Context()
	const stream = "twilio-events"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	callrectest.Eventually(t, 20*time.Second, "stream active", func() bool {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	return eakinesis.Config{Stream: stream, Endpoint: endpoint, Region: "us-east-1", StartPosition: "trim_horizon", PollInterval: 100 * time.Millisecond}
}

// TestCTIFromKinesis: the same answered call, with the events read from a
// real Kinesis API (kinesis-local on loopback) instead of the webhook.
func TestCTIFromKinesis(t *testing.T) {
	kcfg := kinesisForTest(t)
	kc := servicetest.NewKinesisClient(t, kcfg.Endpoint)
	ctx := t.Context()
	stream := kcfg.Stream
	put := func(names ...string) {
		t.Helper()
		for _, n := range names {
			if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(n),
				Data: callrectest.Fixture(t, "event-streams/"+n+".json")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw, apiURL := simTwilio(t)
	tw.AddCall(fixtureCall)
	cfg := testConfig(t)
	cfg.CTI = ctiConfig{AccountSID: fixtureAccount, APIURL: apiURL, DisableWebhook: true, Kinesis: kcfg}
	s := startRun(t, cfg)

	put("task.created", "reservation.created", "reservation.accepted", "reservation.accepted") // a duplicate too
	rec := recordingInProgress(t, s, fixtureCall)
	put("reservation.wrapup", "reservation.completed", "task.completed")
	if r := finished(t, s, rec.Stream.StreamSID); r.State != callrec.StateComplete || r.Stream.CustomParameters["agent"] != "alice.agent@example.com" {
		t.Errorf("recording %s/%s tagged %v", r.State, r.EndReason, r.Stream.CustomParameters)
	}
	var creates int
	for _, r := range tw.Requests() {
		if r.Status == 200 && r.Op == twiliotest.OpCreateStream {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d Start Stream requests, want 1", creates)
	}
}

// TestCTISplitRoles: the same answered call with the eventadapter and the
// tracker in their own processes, talking over HTTP, and the media tier and
// recorder in a third.
func TestCTISplitRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tw, apiURL := simTwilio(t)
	tw.AddCall(fixtureCall)
	s := startRun(t, testConfig(t))
	dir := t.TempDir()
	tr := startChild(t, "tracker running", "tracker", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--twilio-account-sid", fixtureAccount,
		"--twilio-auth-token", testToken, "--twilio-api-url", apiURL, "--media-url", s.cfg.Media.PublicURL, "--events-token", "tok3n")
	ea := startChild(t, "event adapter running", "eventadapter", "--data-dir", dir, "--http-addr", "127.0.0.1:0",
		"--twilio-auth-token", testToken, "--tracker-url", "http://"+tr.fields["http_addr"].(string), "--events-token", "tok3n")
	eaURL := "http://" + ea.fields["http_addr"].(string)
	if code := postEventsTo(t, eaURL, "task.created", "reservation.created", "reservation.accepted"); code != http.StatusOK {
		t.Fatalf("event adapter answered %d", code)
	}
	rec := recordingInProgress(t, s, fixtureCall)
	if code := postEventsTo(t, eaURL, "reservation.wrapup", "reservation.completed", "task.completed"); code != http.StatusOK {
		t.Fatalf("event adapter answered %d", code)
	}
	if r := finished(t, s, rec.Stream.StreamSID); r.State != callrec.StateComplete || r.Stream.CustomParameters["task_sid"] != fixtureTask {
		t.Errorf("recording %s/%s tagged %v", r.State, r.EndReason, r.Stream.CustomParameters)
	}
}
