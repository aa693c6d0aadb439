package tracker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"callrec"
	"callrec/internal/httpio"
)

// MaxEventsBody bounds a POST /api/events body.
const MaxEventsBody = 4 << 20

// EventsHandler serves POST /api/events: a JSON array of callrec.CTIEvent
// handed to sink in order, so an eventadapter can run in another process.
// With a token set, requests must carry "Authorization: Bearer <token>".
// 200 means every event was handled; 503 means retry the batch (events
// are idempotent, so a retry after a partial success is harmless).
func EventsHandler(sink callrec.EventSink, token string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+token)) != 1 {
			httpio.Error(w, r, log, callrec.Errorf(callrec.EFORBIDDEN, "missing or wrong bearer token"))
			return
		}
		var evs []callrec.CTIEvent
		if err := json.NewDecoder(io.LimitReader(r.Body, MaxEventsBody)).Decode(&evs); err != nil {
			httpio.Error(w, r, log, callrec.Errorf(callrec.EINVALID, "body: want a JSON array of CTI events: %v", err))
			return
		}
		for i, ev := range evs {
			if err := sink.HandleEvent(r.Context(), ev); err != nil {
				log.Error("handle event", "id", ev.ID, callrec.LogKeyErr, err)
				httpio.Error(w, r, log, callrec.Errorf(callrec.EUNAVAILABLE, "event %d of %d not handled; retry", i+1, len(evs)))
				return
			}
		}
		httpio.JSON(w, http.StatusOK, map[string]int{"handled": len(evs)})
	})
}

// Client is a callrec.EventSink that posts events to a tracker's
// /api/events (an eventadapter running as its own process).
type Client struct {
	URL   string // the tracker's base URL
	Token string
	HTTP  *http.Client
}

var _ callrec.EventSink = (*Client)(nil)

// HandleEvent implements callrec.EventSink.
func (c *Client) HandleEvent(ctx context.Context, ev callrec.CTIEvent) error {
	body, err := json.Marshal([]callrec.CTIEvent{ev})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/api/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("post event %s to tracker: %w", ev.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("tracker answered %s to event %s: %s", resp.Status, ev.ID, bytes.TrimSpace(b))
	}
	return nil
}
