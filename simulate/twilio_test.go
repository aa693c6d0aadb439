package simulate_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"callrec/internal/callrectest"
	"callrec/internal/twilio"
	"callrec/internal/ws"
	"callrec/simulate"
)

// TestTwilioRESTDrivesMedia: Start Stream through the REST API opens a
// signed Media Stream with the request's parameters; Stop Stream ends it
// with stop; signed status callbacks report both.
func TestTwilioRESTDrivesMedia(t *testing.T) {
	const acct, token = "ACe268443e43d93dab7ebef303bbe9642f", "authtoken123"
	var media atomic.Int64
	r := newRecorder(t, func(r *recorder) {
		r.onMessage = func(_ *ws.Conn, _ int, msg []byte) bool {
			if bytes.Contains(msg, []byte(`"event":"media"`)) {
				media.Add(1)
			}
			return false
		}
	})
	tw := simulate.NewTwilio(acct, token, simulate.Config{URL: "ws://unused", Duration: time.Minute})
	api := httptest.NewServer(tw)
	t.Cleanup(api.Close)
	t.Cleanup(tw.Close)

	var mu sync.Mutex
	var events []string
	val := twilio.NewValidator(token)
	var cbURL string
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_ = req.ParseForm()
		params := map[string]string{}
		for k, v := range req.PostForm {
			params[k] = v[0]
		}
		if !val.ValidateForm(cbURL, params, req.Header.Get(twilio.SignatureHeader)) {
			t.Errorf("status callback with a bad signature: %v", params)
		}
		mu.Lock()
		events = append(events, params["StreamEvent"]+" "+params["StreamName"])
		mu.Unlock()
	}))
	t.Cleanup(cb.Close)
	cbURL = cb.URL + "/twilio/stream-status"

	const call = "CAc0bb2f535401483f8461ddeef83c2d68"
	tw.AddCall(call)
	rc, err := twilio.NewREST(twilio.RESTConfig{AccountSID: acct, AuthToken: token, BaseURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rc.CreateStream(context.Background(), twilio.StartStream{CallSID: call, URL: r.url, Name: "rec-WT1", Track: "both_tracks",
		StatusCallback: cbURL, Params: []twilio.Param{{Name: "task_sid", Value: "WT1"}}})
	if err != nil {
		t.Fatal(err)
	}
	callrectest.Eventually(t, 5*time.Second, "media flowing", func() bool { return media.Load() > 10 })
	if _, err := rc.StopStream(context.Background(), call, "rec-WT1"); err != nil {
		t.Fatal(err)
	}
	callrectest.Eventually(t, 5*time.Second, "stream finished", func() bool { _, ok := tw.Results()[s.SID]; return ok })
	res := tw.Results()[s.SID]
	if !res.StopSent || res.Err != nil || res.CallSID != call {
		t.Errorf("stream result %+v", res)
	}
	st := r.wait()[s.SID]
	if st == nil {
		t.Fatal("no media stream with the created SID")
	}
	if p := decode(t, st.msgs[1]).Start.CustomParameters; p["task_sid"] != "WT1" || len(p) != 1 {
		t.Errorf("customParameters %v", p)
	}
	callrectest.Eventually(t, 5*time.Second, "two callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if events[0] != "stream-started rec-WT1" || events[1] != "stream-stopped rec-WT1" {
		t.Errorf("callbacks %v", events)
	}
}
