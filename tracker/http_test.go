package tracker_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"

	"callrec"
	"callrec/tracker"
)

type sink struct {
	mu   sync.Mutex
	got  []string
	fail bool
}

func (s *sink) HandleEvent(_ context.Context, ev callrec.CTIEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("store down")
	}
	s.got = append(s.got, ev.ID)
	return nil
}

func TestEventsOverHTTP(t *testing.T) {
	sk := &sink{}
	srv := httptest.NewServer(tracker.EventsHandler(sk, "s3cret", nil))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c := &tracker.Client{URL: srv.URL, Token: "s3cret"}
	ev := answeredEvents().events[2]
	ev.ID = "EZ1"
	if err := c.HandleEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if len(sk.got) != 1 || sk.got[0] != "EZ1" {
		t.Fatalf("sink got %v", sk.got)
	}
	if err := (&tracker.Client{URL: srv.URL, Token: "wrong"}).HandleEvent(ctx, ev); err == nil {
		t.Error("wrong token accepted")
	}
	sk.fail = true
	if err := c.HandleEvent(ctx, ev); err == nil {
		t.Error("a sink failure was reported as success: the source would not retry")
	}
}
