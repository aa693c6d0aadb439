package scenario

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"callrec/internal/twilio"
)

// Sink is where a scenario's CloudEvents go, as Event Streams delivers
// them: each Send is one delivery of a batch (one event JSON each). An
// error means the batch was not delivered.
type Sink interface {
	Send(ctx context.Context, events [][]byte) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, events [][]byte) error

// Send implements Sink.
func (f SinkFunc) Send(ctx context.Context, events [][]byte) error { return f(ctx, events) }

// Defaults of WebhookSink.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 100 * time.Millisecond
)

// WebhookSink delivers events as Event Streams' webhook sink does: a POST
// of a JSON array of CloudEvents to URL with ?bodySHA256=<hex SHA-256 of
// the body> appended, signed with X-Twilio-Signature over the full URL
// (and no parameters). A non-2xx answer or a network error is retried with
// exponential backoff, as Event Streams retries.
type WebhookSink struct {
	// URL is where to POST: the full URL of callrec's /twilio/events.
	URL string
	// PublicURL is the URL Twilio signs: the sink destination configured in
	// Twilio (it differs from URL behind a proxy). Default URL.
	PublicURL string
	// AuthToken is the account's auth token, the signature key.
	AuthToken string
	// Client sends the requests; default a client with a 10 s timeout.
	Client *http.Client
	// Attempts is how many times a batch is tried; default DefaultAttempts.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each next
	// one; default DefaultBackoff.
	Backoff time.Duration
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Send implements Sink.
func (s *WebhookSink) Send(ctx context.Context, events [][]byte) error {
	batch := make([]json.RawMessage, len(events))
	for i, e := range events {
		batch[i] = e
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("webhook sink: batch: %w", err)
	}
	sum := sha256.Sum256(body)
	query := "bodySHA256=" + hex.EncodeToString(sum[:])
	target := withQuery(s.URL, query)
	signed := target
	if s.PublicURL != "" {
		signed = withQuery(s.PublicURL, query)
	}
	sig := twilio.Sign(s.AuthToken, signed, nil)
	client := s.Client
	if client == nil {
		client = defaultClient
	}
	attempts, backoff := s.Attempts, s.Backoff
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	var last error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(backoff << (i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(fmt.Errorf("webhook sink: %w", context.Cause(ctx)), last)
			case <-t.C:
			}
		}
		if last = post(ctx, client, target, sig, body); last == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("webhook sink: %d events not delivered after %d attempts: %w", len(events), attempts, last)
}

// post makes one delivery attempt.
func post(ctx context.Context, client *http.Client, url, sig string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(twilio.SignatureHeader, sig)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// withQuery appends a query parameter to a URL.
func withQuery(u, q string) string {
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}
