package scenario_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"callrec/internal/twilio"
	"callrec/simulate/scenario"
)

const sinkToken = "12345678901234567890123456789012"

// webhookServer is an Event Streams webhook endpoint that checks the
// signature as callrec does (ValidateBody over the public URL and the
// query), and answers the first fail requests with 503.
type webhookServer struct {
	*httptest.Server
	publicURL string // "" means the server's own URL
	fail      int32
	requests  atomic.Int32
	bad       atomic.Int32 // requests with a wrong signature
	events    atomic.Int32
}

func newWebhookServer(t *testing.T, fail int32) *webhookServer {
	ws := &webhookServer{fail: fail}
	val := twilio.NewValidator(sinkToken)
	ws.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ws.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		public := ws.publicURL
		if public == "" {
			public = ws.URL + "/twilio/events"
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			!val.ValidateBody(public+"?"+r.URL.RawQuery, body, r.Header.Get(twilio.SignatureHeader)) {
			ws.bad.Add(1)
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, "not an array", http.StatusBadRequest)
			return
		}
		if n <= ws.fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		ws.events.Add(int32(len(batch)))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ws.Close)
	return ws
}

func TestWebhookSink(t *testing.T) {
	events := [][]byte{[]byte(`{"id":"EZ1","type":"com.twilio.taskrouter.task.created"}`), []byte(`{"id":"EZ2"}`)}
	ctx := context.Background()

	t.Run("signed", func(t *testing.T) {
		ws := newWebhookServer(t, 0)
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: sinkToken}
		if err := s.Send(ctx, events); err != nil {
			t.Fatal(err)
		}
		if ws.events.Load() != 2 || ws.bad.Load() != 0 || ws.requests.Load() != 1 {
			t.Errorf("%d events in %d requests, %d refused", ws.events.Load(), ws.requests.Load(), ws.bad.Load())
		}
	})
	t.Run("behind a proxy: Twilio signs the public URL", func(t *testing.T) {
		ws := newWebhookServer(t, 0)
		ws.publicURL = "https://callrec.example.com/twilio/events"
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", PublicURL: ws.publicURL, AuthToken: sinkToken}
		if err := s.Send(ctx, events); err != nil {
			t.Fatal(err)
		}
		s.PublicURL = "" // signs the URL it posts to: refused
		s.Attempts = 1
		if err := s.Send(ctx, events); err == nil || ws.bad.Load() != 1 {
			t.Errorf("signature over the wrong URL: %v, %d refused", err, ws.bad.Load())
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		ws := newWebhookServer(t, 0)
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: "other", Attempts: 2, Backoff: time.Millisecond}
		if err := s.Send(ctx, events); err == nil || ws.bad.Load() != 2 {
			t.Errorf("wrong token: %v, %d refused", err, ws.bad.Load())
		}
	})
	t.Run("retried like Event Streams", func(t *testing.T) {
		ws := newWebhookServer(t, 2)
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: sinkToken, Backoff: time.Millisecond}
		if err := s.Send(ctx, events); err != nil {
			t.Fatal(err)
		}
		if ws.requests.Load() != 3 || ws.events.Load() != 2 {
			t.Errorf("%d requests, %d events accepted", ws.requests.Load(), ws.events.Load())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		ws := newWebhookServer(t, 100)
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: sinkToken, Attempts: 3, Backoff: time.Millisecond}
		if err := s.Send(ctx, events); err == nil || ws.requests.Load() != 3 {
			t.Errorf("persistent 503: %v after %d requests", err, ws.requests.Load())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ws := newWebhookServer(t, 100)
		cctx, cancel := context.WithCancel(ctx)
		s := &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: sinkToken, Backoff: time.Hour}
		time.AfterFunc(50*time.Millisecond, cancel)
		if err := s.Send(cctx, events); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Send: %v", err)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		s := &scenario.WebhookSink{URL: "http://127.0.0.1:1/x", AuthToken: sinkToken}
		if err := s.Send(ctx, [][]byte{[]byte("{")}); err == nil {
			t.Error("invalid event sent")
		}
	})
}

// TestWebhookSinkPlay: a whole scenario through the signed webhook.
func TestWebhookSinkPlay(t *testing.T) {
	ws := newWebhookServer(t, 0)
	c, err := scenario.Play(context.Background(), scenario.WarmTransfer, scenario.Env{Sink: &scenario.WebhookSink{URL: ws.URL + "/twilio/events", AuthToken: sinkToken},
		Talk: 10 * time.Millisecond, Step: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if int(ws.events.Load()) != len(c.Events) || int(ws.requests.Load()) != c.Batches || ws.bad.Load() != 0 {
		t.Errorf("%d events in %d requests (%d refused); the call sent %d in %d", ws.events.Load(), ws.requests.Load(),
			ws.bad.Load(), len(c.Events), c.Batches)
	}
}
