// Package streams is the Stream Manager: it turns the tracker's decisions
// into Twilio Start/Stop Stream requests, exactly once per decision despite
// redelivered events, restarts and retries. Every order is saved as an
// intent keyed by the decision's idempotency key before anything is sent;
// a worker executes pending intents with exponential backoff and jitter, and
// a circuit breaker stops hammering Twilio while it keeps failing (the CTI
// state is kept; the orders wait and go out when Twilio recovers).
package streams

import (
	"context"
	"sort"
	"sync"
	"time"

	"callrec/internal/twilio"
)

// Kind is what an order does.
type Kind string

// Order kinds.
const (
	Start Kind = "start"
	Stop  Kind = "stop"
)

// Order is one StartDuplicateStream or StopDuplicateStream.
type Order struct {
	Key           string // idempotency key: one execution per key, ever
	Kind          Kind
	TaskSID       string
	CallSID       string // the customer leg; empty: look it up in the conference
	ConferenceSID string
	AgentLegs     []string // call SIDs of agent legs (to tell the customer apart)
	Name          string   // stream name, unique per call
	// URL is where the stream goes; empty: Config.MediaURL. Each copy of a
	// dual stream has its own (see DualStreams).
	URL    string
	Params []twilio.Param
	Since  time.Time // when the CTI event that caused it arrived (latency metric)
}

// State of an intent.
type State string

// Intent states.
const (
	Pending   State = "pending"
	Done      State = "done"
	Abandoned State = "abandoned" // given up (call gone, or stopped before it started)
)

// Intent is an order and what became of it.
type Intent struct {
	Order
	State     State     `json:"state"`
	Outcome   string    `json:"outcome,omitempty"` // started, stopped, already_gone, call_ended, never_started, gave_up…
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	NextTry   time.Time `json:"next_try,omitzero"`
	StreamSID string    `json:"stream_sid,omitempty"`
	Resolved  string    `json:"resolved_call_sid,omitempty"` // the call SID the stream was started on
	Created   time.Time `json:"created"`
	Finished  time.Time `json:"finished,omitzero"`
	// Restarts counts replacement streams started after Twilio reported
	// the stream dead; Live names the stream currently running (this
	// intent's own name until the first restart). Start intents only.
	Restarts int    `json:"restarts,omitempty"`
	Live     string `json:"live,omitempty"`
}

// Store keeps intents; a restarted tracker carries on from it.
type Store interface {
	// Add saves a new intent; it reports false (and saves nothing) if one
	// with the same key exists.
	Add(ctx context.Context, in Intent) (bool, error)
	Put(ctx context.Context, in Intent) error
	Get(ctx context.Context, key string) (Intent, bool, error)
	// Pending returns the pending intents, oldest first.
	Pending(ctx context.Context) ([]Intent, error)
}

// MemoryStore is a Store in memory (tests, demo).
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]Intent
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]Intent{}} }

// Add implements Store.
func (s *MemoryStore) Add(_ context.Context, in Intent) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[in.Key]; ok {
		return false, nil
	}
	s.m[in.Key] = in
	return true, nil
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, in Intent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[in.Key] = in
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, key string) (Intent, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.m[key]
	return in, ok, nil
}

// Pending implements Store.
func (s *MemoryStore) Pending(context.Context) ([]Intent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Intent
	for _, in := range s.m {
		if in.State == Pending {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}
