// Package ingest carries recorders' STARTED/STOPPED events and the tracker's
// contacts to consolidation when they run in different processes: Handler
// is consolidation's side (POST /api/ingest/recording-events and
// /api/ingest/contacts, with a shared bearer token), Client the senders'.
//
// Delivery is at least once: the tracker's contacts are sent synchronously
// (a failure fails the CTI event, which is delivered again); recording
// events are queued and retried with backoff until consolidation takes
// them (the join is idempotent, so repeats are harmless).
package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"callrec"
	"callrec/internal/httpio"
)

// Paths of the ingest API.
const (
	PathRecordingEvents = "/api/ingest/recording-events"
	PathContacts        = "/api/ingest/contacts"
)

// Joiner is what consolidation does with what arrives (join.Joiner).
type Joiner interface {
	NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error
	Contact(ctx context.Context, c callrec.Contact) error
}

// Handler serves the ingest API.
type Handler struct {
	Token  string
	Joiner Joiner
	Log    *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if h.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(h.Token)) != 1 {
		httpio.Error(w, r, log, callrec.Errorf(callrec.EUNAUTHENTICATED, "ingest: missing or wrong bearer token"))
		return
	}
	if r.Method != http.MethodPost {
		httpio.Error(w, r, log, callrec.Errorf(callrec.EINVALID, "ingest: POST only"))
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20))
	var err error
	switch r.URL.Path {
	case PathRecordingEvents:
		var ev callrec.RecordingEvent
		if err = dec.Decode(&ev); err != nil {
			if !isTooBig(err) {
				err = callrec.Errorf(callrec.EINVALID, "ingest: recording event: %v", err)
			}
			break
		}
		err = h.Joiner.NotifyRecording(r.Context(), ev)
	case PathContacts:
		var c callrec.Contact
		if err = dec.Decode(&c); err != nil {
			if !isTooBig(err) {
				err = callrec.Errorf(callrec.EINVALID, "ingest: contact: %v", err)
			}
			break
		}
		err = h.Joiner.Contact(r.Context(), c)
	default:
		err = callrec.Errorf(callrec.ENOTFOUND, "ingest: no endpoint %s", r.URL.Path)
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		log.Error("ingest: body over the limit", "path", r.URL.Path, "limit", tooBig.Limit)
		// Code invalid: a sender must not retry it (it would block its
		// queue behind an event that can never be taken).
		var body httpio.ErrorBody
		body.Error.Code, body.Error.Message = callrec.EINVALID, fmt.Sprintf("ingest: body over %d bytes", tooBig.Limit)
		httpio.JSON(w, http.StatusRequestEntityTooLarge, body)
		return
	}
	if err != nil {
		log.Warn("ingest refused", "path", r.URL.Path, callrec.LogKeyErr, err)
		httpio.Error(w, r, log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func isTooBig(err error) bool {
	var tooBig *http.MaxBytesError
	return errors.As(err, &tooBig)
}

// Client sends to a consolidation's ingest API, synchronously: wrap it in a
// Queue for a recorder.
type Client struct {
	url   string
	token string
	http  *http.Client
}

// NewClient returns a client of the consolidation at baseURL.
func NewClient(baseURL, token string) *Client {
	return &Client{url: strings.TrimSuffix(baseURL, "/"), token: token, http: &http.Client{Timeout: 10 * time.Second}}
}

// NotifyRecording implements callrec.RecordingNotifier.
func (c *Client) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	return c.post(ctx, PathRecordingEvents, ev)
}

// Contact implements the tracker's ContactSink.
func (c *Client) Contact(ctx context.Context, ct callrec.Contact) error {
	return c.post(ctx, PathContacts, ct)
}

func (c *Client) post(ctx context.Context, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return callrec.Errorf(callrec.EUNAVAILABLE, "consolidation: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	var body httpio.ErrorBody
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(rb, &body) == nil && body.Error.Code != "" {
		return callrec.Errorf(body.Error.Code, "consolidation: %s", body.Error.Message)
	}
	return callrec.Errorf(callrec.EUNAVAILABLE, "consolidation answered %s", resp.Status)
}

// QueueSize bounds the recording events waiting for delivery.
const QueueSize = 10000

// Queue hands recording events to a notifier in the background, in order,
// retrying failures with backoff, so a recorder never waits for
// consolidation. An event refused as invalid is logged and dropped.
type Queue struct {
	next   callrec.RecordingNotifier
	log    *slog.Logger
	queue  chan callrec.RecordingEvent
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

var _ callrec.RecordingNotifier = (*Queue)(nil)

// NewQueue starts a queue in front of next; Close stops it.
func NewQueue(next callrec.RecordingNotifier, log *slog.Logger) *Queue {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{next: next, log: log.With(callrec.LogKeyComponent, "consolidation-queue"),
		queue: make(chan callrec.RecordingEvent, QueueSize), ctx: ctx, cancel: cancel}
	q.wg.Go(q.send)
	return q
}

// NotifyRecording implements callrec.RecordingNotifier: the event is queued.
// A full queue is an error (logged by the recorder); the recording itself
// is unaffected.
func (q *Queue) NotifyRecording(ctx context.Context, ev callrec.RecordingEvent) error {
	select {
	case q.queue <- ev:
		return nil
	default:
		return callrec.Errorf(callrec.EUNAVAILABLE, "%d recording events wait for consolidation; dropped %s of %s", QueueSize, ev.Type, ev.Recording.INUM)
	}
}

// Close stops the queue after trying, for at most grace, to deliver what is
// queued. No NotifyRecording may follow.
func (q *Queue) Close(grace time.Duration) {
	close(q.queue)
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		q.cancel()
		<-done
	}
	q.cancel()
}

func (q *Queue) send() {
	for ev := range q.queue {
		for attempt := 0; ; attempt++ {
			err := q.next.NotifyRecording(q.ctx, ev)
			if err == nil {
				break
			}
			if callrec.ErrorCode(err) == callrec.EINVALID {
				q.log.Error("consolidation refused a recording event", callrec.LogKeyINUM, ev.Recording.INUM, callrec.LogKeyErr, err)
				break
			}
			wait := min(time.Duration(1<<min(attempt, 6))*100*time.Millisecond, 5*time.Second)
			wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
			q.log.Warn("consolidation did not take a recording event: retrying", callrec.LogKeyINUM, ev.Recording.INUM, "attempt", attempt+1, "wait", wait, callrec.LogKeyErr, err)
			select {
			case <-q.ctx.Done():
				q.log.Error("recording event not delivered before shutdown", callrec.LogKeyINUM, ev.Recording.INUM, "type", ev.Type)
				return
			case <-time.After(wait):
			}
		}
	}
}
