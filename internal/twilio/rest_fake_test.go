package twilio_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
)

// TestRESTErrorPaths drives the client against the stateful fake: the error
// answers Prism cannot give map to what the Stream Manager branches on.
func TestRESTErrorPaths(t *testing.T) {
	fake := twiliotest.New(acct, "authtoken123")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: "authtoken123", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := twilio.StartStream{CallSID: call, URL: "wss://rec.example.com/media", Name: "rec-1", Track: "both_tracks",
		Params: []twilio.Param{{Name: "task_sid", Value: "WT1"}, {Name: "agent", Value: "alice@example.com"}}}
	apiErr := func(_ any, err error) *twilio.APIError {
		t.Helper()
		var ae *twilio.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an *APIError", err)
		}
		return ae
	}

	if ae := apiErr(rc.CreateStream(ctx, start)); !ae.NotFound() {
		t.Errorf("unknown call: %v, want not found", ae)
	}
	fake.AddCall(call)
	fake.Fail(twiliotest.OpCreateStream, 429, 20429, 1)
	fake.Fail(twiliotest.OpCreateStream, 503, 0, 1)
	for _, want := range []int{429, 503} {
		if ae := apiErr(rc.CreateStream(ctx, start)); ae.Status != want || !ae.Temporary() {
			t.Errorf("injected %d: got %v (temporary %v)", want, ae, ae.Temporary())
		}
	}
	s, err := rc.CreateStream(ctx, start)
	if err != nil || s.Name != "rec-1" || s.Status != "in-progress" {
		t.Fatalf("CreateStream = %+v, %v", s, err)
	}
	if got := fake.Streams()[0].Params; got["task_sid"] != "WT1" || got["agent"] != "alice@example.com" {
		t.Errorf("parameters reached Twilio as %v", got)
	}
	if ae := apiErr(rc.CreateStream(ctx, start)); ae.Status != 400 || ae.Code != 21219 {
		t.Errorf("duplicate name: %v", ae)
	}
	second := start
	second.Name = "rec-2"
	if _, err := rc.CreateStream(ctx, second); err != nil {
		t.Fatalf("second both_tracks stream (4 tracks in all): %v", err)
	}
	third := start
	third.Name, third.Track = "rec-3", "inbound_track"
	if ae := apiErr(rc.CreateStream(ctx, third)); ae.Code != 21218 {
		t.Errorf("fifth track: %v, want the track limit", ae)
	}
	if st, err := rc.StopStream(ctx, call, "rec-1"); err != nil || st.Status != "stopped" {
		t.Fatalf("StopStream = %+v, %v", st, err)
	}
	if ae := apiErr(rc.StopStream(ctx, call, "rec-1")); !ae.NotFound() {
		t.Errorf("stopping again: %v, want not found (already gone)", ae)
	}
	fake.EndCall(call)
	if ae := apiErr(rc.CreateStream(ctx, third)); !ae.CallEnded() {
		t.Errorf("ended call: %v, want 21220", ae)
	}
	fake.AddConference(conf, twiliotest.Participant{CallSID: "CAagent", Label: "worker", Status: "connected"},
		twiliotest.Participant{CallSID: call, Label: "customer", Status: "connected"})
	ps, err := rc.Participants(ctx, conf)
	if err != nil {
		t.Fatal(err)
	}
	if leg, ok := twilio.CustomerLeg(ps); !ok || leg != call {
		t.Errorf("customer leg %q, %v", leg, ok)
	}
	bad, _ := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: "wrongtoken", BaseURL: srv.URL})
	if ae := apiErr(bad.CreateStream(ctx, start)); ae.Status != 401 || ae.Code != 20003 {
		t.Errorf("wrong token: %v", ae)
	}
}
