package twiliotest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"callrec/internal/twilio"
	"callrec/internal/twiliotest"
)

const (
	acct  = "ACe268443e43d93dab7ebef303bbe9642f"
	token = "authtoken123"
	call  = "CAc0bb2f535401483f8461ddeef83c2d68"
)

func newClient(t *testing.T) (*twiliotest.Fake, *twilio.REST) {
	t.Helper()
	fake := twiliotest.New(acct, token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: token, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddCall(call)
	return fake, rc
}

func create(rc *twilio.REST, name, track string) (*twilio.Stream, error) {
	return rc.CreateStream(context.Background(), twilio.StartStream{CallSID: call, URL: "wss://rec.example.com/media/pair/" + name + "/1",
		Name: name, Track: track})
}

func wantCode(t *testing.T, what string, err error, status, code int) {
	t.Helper()
	var ae *twilio.APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Errorf("%s: got %v, want HTTP %d code %d", what, err, status, code)
	}
}

// TestForkLimit: a call holds several live streams up to Twilio's four
// forked tracks (a both_tracks stream is two); the next is refused with
// Twilio's error until one ends, by a stop or on its own.
func TestForkLimit(t *testing.T) {
	for _, tt := range []struct {
		track string
		fit   int
	}{{"inbound_track", 4}, {"", 4}, {"outbound_track", 4}, {"both_tracks", 2}} {
		t.Run(fmt.Sprintf("%q", tt.track), func(t *testing.T) {
			fake, rc := newClient(t)
			var sids []string
			for i := range tt.fit {
				s, err := create(rc, fmt.Sprintf("s%d", i), tt.track)
				if err != nil {
					t.Fatalf("stream %d of %d: %v", i+1, tt.fit, err)
				}
				sids = append(sids, s.SID)
			}
			_, err := create(rc, "one-too-many", tt.track)
			wantCode(t, "past the limit", err, 400, 21218)
			if _, err := rc.StopStream(context.Background(), call, "s0"); err != nil {
				t.Fatalf("stop s0: %v", err)
			}
			if _, err := create(rc, "after-stop", tt.track); err != nil {
				t.Errorf("a stream after one was stopped: %v", err)
			}
			_, err = create(rc, "full-again", tt.track)
			wantCode(t, "full again", err, 400, 21218)
			if !fake.StreamEnded(sids[1]) || fake.StreamEnded(sids[1]) {
				t.Error("StreamEnded: want true once, then false")
			}
			if _, err := create(rc, "after-error", tt.track); err != nil {
				t.Errorf("a stream after one ended on its own: %v", err)
			}
			_, err = rc.StopStream(context.Background(), call, "s1")
			wantCode(t, "stop of a stream that ended", err, 404, 20404)
			live := 0
			for _, s := range fake.Streams() {
				if s.Status == "in-progress" {
					live++
				}
			}
			if live != tt.fit {
				t.Errorf("%d streams live, want %d", live, tt.fit)
			}
		})
	}
}

// TestDuplicateNameWhileLive: a name is unique among the call's live
// streams; once that stream ended, the name may be used again.
func TestDuplicateNameWhileLive(t *testing.T) {
	fake, rc := newClient(t)
	s, err := create(rc, "rec-1-c1", "both_tracks")
	if err != nil {
		t.Fatal(err)
	}
	_, err = create(rc, "rec-1-c1", "both_tracks")
	wantCode(t, "same name", err, 400, 21219)
	fake.StreamEnded(s.SID)
	if _, err := create(rc, "rec-1-c1", "both_tracks"); err != nil {
		t.Errorf("the name of an ended stream: %v", err)
	}
}
