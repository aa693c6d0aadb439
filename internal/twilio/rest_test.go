package twilio_test

import (
	"context"
	"errors"
	"testing"

	"callrec/internal/servicetest"
	"callrec/internal/twilio"
)

const (
	acct = "ACe268443e43d93dab7ebef303bbe9642f"
	call = "CAc0bb2f535401483f8461ddeef83c2d68"
	conf = "CFab3049da9a0cd8d6e8b7c62586752472"
)

// TestRESTAgainstTwilioSpec: every request the Stream Manager makes is
// accepted by Prism serving Twilio's own OpenAPI spec, and a request the spec
// forbids is refused (so the check is real).
func TestRESTAgainstTwilioSpec(t *testing.T) {
	base := servicetest.StartPrism(t)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: "authtoken123", BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	params := []twilio.Param{{Name: "task_sid", Value: "WTc146b6ad38277b931d94d82f20703136"},
		{Name: "reservation_sid", Value: "WR16792ea346317c17b1487d339b1a86ed"}, {Name: "agent", Value: "alice.agent@example.com"}}
	s, err := rc.CreateStream(ctx, twilio.StartStream{CallSID: call, URL: "wss://rec.example.com/media", Name: "rec-WTc146b6ad38277b931d94d82f20703136",
		Track: "both_tracks", StatusCallback: "https://rec.example.com/twilio/stream-status", Params: params})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if s.SID == "" || s.Status != "in-progress" {
		t.Errorf("CreateStream answered %+v", s)
	}
	if _, err := rc.StopStream(ctx, call, "rec-WTc146b6ad38277b931d94d82f20703136"); err != nil {
		t.Fatalf("StopStream: %v", err)
	}
	if _, err := rc.Participants(ctx, conf); err != nil {
		t.Fatalf("Participants: %v", err)
	}
	for name, bad := range map[string]twilio.StartStream{
		"malformed call SID": {CallSID: "CAnot-a-sid", URL: "wss://rec.example.com/media"},
		"unknown track":      {CallSID: call, URL: "wss://rec.example.com/media", Track: "sideways"},
	} {
		_, err := rc.CreateStream(ctx, bad)
		var ae *twilio.APIError
		if !errors.As(err, &ae) || ae.Status != 422 {
			t.Errorf("%s: got %v, want Prism's 422", name, err)
		}
	}
}

func TestCustomerLeg(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []twilio.Participant
		want string
		ok   bool
	}{
		{"labelled", []twilio.Participant{{CallSID: "CA1", Label: "worker", Status: "connected"}, {CallSID: "CA2", Label: "customer", Status: "connected"}}, "CA2", true},
		{"the other connected leg", []twilio.Participant{{CallSID: "CA1", Status: "connected"}, {CallSID: "CA2", Status: "connected"}}, "CA2", true},
		{"ambiguous", []twilio.Participant{{CallSID: "CA2", Status: "connected"}, {CallSID: "CA3", Status: "connected"}}, "", false},
		{"only the agent", []twilio.Participant{{CallSID: "CA1", Status: "connected"}}, "", false},
	} {
		got, ok := twilio.CustomerLeg(tc.ps, "CA1")
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: CustomerLeg = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
