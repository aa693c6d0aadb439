package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/twilio"
)

// API is the part of Twilio's REST API the manager uses (*twilio.REST).
type API interface {
	CreateStream(ctx context.Context, s twilio.StartStream) (*twilio.Stream, error)
	StopStream(ctx context.Context, callSID, sidOrName string) (*twilio.Stream, error)
	Participants(ctx context.Context, conferenceSID string) ([]twilio.Participant, error)
}

// Config configures a Manager.
type Config struct {
	MediaURL       string // the media tier's public wss:// URL
	StatusCallback string // where Twilio posts stream-started/-stopped/-error
	Track          string // default both_tracks
	BackoffBase    time.Duration
	BackoffMax     time.Duration
	GiveUpAfter    time.Duration // a start still failing after this is abandoned (the call is surely over)
	BreakerFails   int           // consecutive failures that open the circuit
	BreakerOpen    time.Duration // how long it stays open before one trial
	// DualStreams makes every start decision start DualCopies streams on
	// the call, each to its own media adapter (see pair.go).
	DualStreams bool
}

func (c *Config) defaults() {
	if c.Track == "" {
		c.Track = "both_tracks"
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 200 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 30 * time.Minute
	}
	if c.BreakerFails <= 0 {
		c.BreakerFails = 5
	}
	if c.BreakerOpen <= 0 {
		c.BreakerOpen = 30 * time.Second
	}
}

// Manager executes stream orders.
type Manager struct {
	cfg   Config
	api   API
	store Store
	log   *slog.Logger
	m     *metrics
	wake  chan struct{}

	mu        sync.Mutex
	fails     int       // consecutive failures
	openUntil time.Time // circuit open until
}

// New returns a Manager; Run executes the orders.
func New(cfg Config, api API, store Store, log *slog.Logger, reg prometheus.Registerer) *Manager {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, api: api, store: store, log: log.With(callrec.LogKeyComponent, "streams"),
		m: newMetrics(reg), wake: make(chan struct{}, 1)}
}

// Submit saves an order. An order whose key was seen before is ignored (and
// reported false): the decision was already taken, whatever became of it.
// With DualStreams a start becomes one intent per copy, and a stop one per
// stream started for the decision; Submit reports true if any of them is
// new, so a decision half saved before a crash is completed when it comes
// again. The keys are then StartKey and StopKey of the copies' names.
func (m *Manager) Submit(ctx context.Context, o Order) (bool, error) {
	orders, err := m.expand(ctx, o)
	if err != nil {
		return false, fmt.Errorf("save stream order %s: %w", o.Key, err)
	}
	return m.add(ctx, 0, orders...)
}

// add saves orders as pending intents, due after delay, and wakes the
// worker; it reports whether any was new.
func (m *Manager) add(ctx context.Context, delay time.Duration, orders ...Order) (bool, error) {
	now := time.Now().UTC()
	added := false
	for _, o := range orders {
		ok, err := m.store.Add(ctx, Intent{Order: o, State: Pending, Created: now, NextTry: now.Add(delay)})
		if err != nil {
			return added, fmt.Errorf("save stream order %s: %w", o.Key, err)
		}
		if ok {
			added = true
		} else {
			m.m.duplicates.Inc()
		}
	}
	if !added {
		return false, nil
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true, nil
}

// CircuitOpen reports whether Twilio requests are suspended.
func (m *Manager) CircuitOpen() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.openUntil)
}

// Run executes due intents until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-t.C:
		}
		next, err := m.runDue(ctx)
		if err != nil {
			m.log.Error("stream orders", callrec.LogKeyErr, err)
			next = time.Now().Add(time.Second)
		}
		t.Reset(max(time.Until(next), time.Millisecond))
	}
}

// runDue executes every due intent once and returns when the next one is due.
func (m *Manager) runDue(ctx context.Context) (time.Time, error) {
	pending, err := m.store.Pending(ctx)
	if err != nil {
		return time.Time{}, err
	}
	next := time.Now().Add(time.Minute)
	for _, in := range pending {
		if ctx.Err() != nil {
			return next, nil
		}
		if open := m.openUntilTime(); time.Now().Before(open) {
			return open, nil // the circuit is open: everything waits
		}
		if in.NextTry.After(time.Now()) {
			next = minTime(next, in.NextTry)
			continue
		}
		in = m.execute(ctx, in)
		if err := m.store.Put(ctx, in); err != nil {
			return next, fmt.Errorf("save intent %s: %w", in.Key, err)
		}
		if in.State == Pending {
			next = minTime(next, in.NextTry)
		}
	}
	return next, nil
}

func (m *Manager) openUntilTime() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openUntil
}

// execute makes one attempt at an intent and returns it updated.
func (m *Manager) execute(ctx context.Context, in Intent) Intent {
	in.Attempts++
	var outcome string
	var err error
	switch in.Kind {
	case Start:
		outcome, err = m.start(ctx, &in)
	case Stop:
		outcome, err = m.stop(ctx, &in)
	default:
		outcome = "unknown_kind"
	}
	var ae *twilio.APIError
	switch {
	case err == nil:
		m.succeeded()
		return m.finish(in, Done, outcome)
	case errors.As(err, &ae) && (ae.NotFound() || ae.CallEnded()):
		m.succeeded() // Twilio answered: it is up
		if in.Kind == Stop {
			return m.finish(in, Done, "already_gone")
		}
		return m.finish(in, Abandoned, "call_ended")
	case errors.As(err, &ae) && !ae.Temporary():
		m.succeeded()
		m.m.apiErrors.WithLabelValues(string(in.Kind), fmt.Sprint(ae.Status)).Inc()
		if in.Kind == Start && ae.Code == 21219 { // a stream by that name exists: an earlier attempt went through
			return m.finish(in, Done, "already_started")
		}
		in.LastError = err.Error()
		m.log.Error("Twilio refused a stream order", "key", in.Key, callrec.LogKeyErr, err)
		return m.finish(in, Abandoned, "refused")
	}
	// Temporary: throttling, server errors, network.
	if errors.As(err, &ae) {
		m.m.apiErrors.WithLabelValues(string(in.Kind), fmt.Sprint(ae.Status)).Inc()
	} else {
		m.m.apiErrors.WithLabelValues(string(in.Kind), "network").Inc()
	}
	m.failed()
	in.LastError = err.Error()
	if in.Kind == Start && time.Since(in.Created) > m.cfg.GiveUpAfter {
		m.log.Error("giving up starting a stream", "key", in.Key, "attempts", in.Attempts, callrec.LogKeyErr, err)
		return m.finish(in, Abandoned, "gave_up")
	}
	in.NextTry = time.Now().Add(m.backoff(in.Attempts))
	m.m.retries.WithLabelValues(string(in.Kind)).Inc()
	m.log.Warn("stream order failed, will retry", "key", in.Key, "attempt", in.Attempts, "next_try", in.NextTry, callrec.LogKeyErr, err)
	return in
}

func (m *Manager) finish(in Intent, st State, outcome string) Intent {
	in.State, in.Outcome, in.Finished = st, outcome, time.Now().UTC()
	m.m.orders.WithLabelValues(string(in.Kind), outcome).Inc()
	m.log.Info("stream order finished", "key", in.Key, "kind", in.Kind, "outcome", outcome, "attempts", in.Attempts,
		callrec.LogKeyCallSID, in.Resolved, callrec.LogKeyStreamSID, in.StreamSID)
	return in
}

func (m *Manager) start(ctx context.Context, in *Intent) (string, error) {
	call := in.Order.CallSID
	if call == "" {
		if in.ConferenceSID == "" {
			return "", fmt.Errorf("start %s: neither call nor conference SID", in.Key)
		}
		ps, err := m.api.Participants(ctx, in.ConferenceSID)
		if err != nil {
			return "", err
		}
		var ok bool
		if call, ok = twilio.CustomerLeg(ps, in.AgentLegs...); !ok {
			return "", fmt.Errorf("no customer leg in conference %s yet", in.ConferenceSID) // temporary: retried
		}
	}
	in.Resolved = call
	if !in.Since.IsZero() {
		m.m.latency.Observe(time.Since(in.Since).Seconds())
	}
	u := in.URL
	if u == "" {
		u = m.cfg.MediaURL
	}
	s, err := m.api.CreateStream(ctx, twilio.StartStream{CallSID: call, URL: u, Name: in.Name, Track: m.cfg.Track,
		StatusCallback: m.cfg.StatusCallback, Params: in.Params})
	if err != nil {
		return "", err
	}
	in.StreamSID = s.SID
	return "started", nil
}

func (m *Manager) stop(ctx context.Context, in *Intent) (string, error) {
	// A start for the same stream that never went out is dropped instead:
	// nothing to stop, and it must not start later.
	started, err := m.startOf(ctx, in)
	if err != nil {
		return "", err
	}
	switch {
	case started != nil && started.State == Pending:
		*started = m.finish(*started, Abandoned, "stopped_before_start")
		if err := m.store.Put(ctx, *started); err != nil {
			return "", err
		}
		return "never_started", nil
	case started != nil && started.State == Abandoned:
		return "never_started", nil
	}
	call := in.Order.CallSID
	if started != nil && started.Resolved != "" {
		call = started.Resolved
	}
	if call == "" {
		return "never_started", nil
	}
	in.Resolved = call
	target := in.Name
	if started != nil && started.Restarts > 0 {
		// The stream was replaced after it died: stop the replacement, or
		// drop it if it has not gone out yet.
		target = started.Live
		r, ok, err := m.store.Get(ctx, restartKey(in.Name, started.Restarts))
		if err != nil {
			return "", err
		}
		if ok && r.State == Pending {
			if err := m.store.Put(ctx, m.finish(r, Abandoned, "stopped_before_start")); err != nil {
				return "", err
			}
			return "never_started", nil
		}
	}
	if _, err := m.api.StopStream(ctx, call, target); err != nil {
		return "", err
	}
	return "stopped", nil
}

// startOf finds the start intent of the stream a stop is for: same task and
// stream name.
func (m *Manager) startOf(ctx context.Context, stop *Intent) (*Intent, error) {
	in, ok, err := m.store.Get(ctx, StartKey(stop.Name))
	if err != nil || !ok {
		return nil, err
	}
	return &in, nil
}

// restartKey is the idempotency key of a stream's k-th restart.
func restartKey(base string, k int) string { return fmt.Sprintf("restart:%s:%d", base, k) }

// MaxRestarts bounds the replacement streams of one stream.
const MaxRestarts = 20

// StreamFailed handles Twilio's stream-error for the stream named name:
// if that stream is the live one of a stream still wanted (started, no stop
// decided), a replacement stream is ordered on the same call, its custom
// parameters saying which stream it replaces, so the recording notes the
// gap. It reports whether a restart was ordered; a callback for a stream
// already replaced or stopped orders nothing. A copy of a dual stream is
// replaced alone, to the same URL and with the same pair parameters.
func (m *Manager) StreamFailed(ctx context.Context, name, streamSID, reason string) (bool, error) {
	base := liveName(name)
	start, ok, err := m.store.Get(ctx, StartKey(base))
	if err != nil || !ok {
		return false, err
	}
	if _, stopped, err := m.store.Get(ctx, StopKey(base)); err != nil || stopped {
		return false, err
	}
	live := start.Live
	if live == "" {
		live = base
	}
	if start.State != Done || live != name || start.Restarts >= MaxRestarts {
		return false, nil
	}
	k := start.Restarts + 1
	o := start.Order
	o.Key, o.Name, o.CallSID, o.ConferenceSID = restartKey(base, k), restartName(base, k), start.Resolved, ""
	o.Params = append(append([]twilio.Param(nil), start.Params...),
		twilio.Param{Name: "restart_of", Value: streamSID}, twilio.Param{Name: "restart", Value: fmt.Sprint(k)})
	delay := m.restartDelay(k)
	o.Since = time.Now().Add(delay) // the latency metric leaves the deliberate delay out
	added, err := m.add(ctx, delay, o)
	if err != nil || !added {
		return false, err
	}
	start.Restarts, start.Live = k, o.Name
	if err := m.store.Put(ctx, start); err != nil {
		return false, fmt.Errorf("record restart of %s: %w", base, err)
	}
	m.m.restarts.Inc()
	m.log.Warn("stream died mid-call: starting a replacement", "name", name, callrec.LogKeyStreamSID, streamSID,
		"replacement", o.Name, callrec.LogKeyReason, reason)
	return true, nil
}

// restartDelay is how long the k-th replacement of a stream waits: the
// first goes at once, a stream that keeps dying (say its media URL is
// refused) is replaced after BackoffBase, then twice as long each time, up
// to BackoffMax, rather than MaxRestarts times in a second.
func (m *Manager) restartDelay(k int) time.Duration {
	if k <= 1 {
		return 0
	}
	d := m.cfg.BackoffBase << min(k-2, 20)
	if d <= 0 || d > m.cfg.BackoffMax {
		d = m.cfg.BackoffMax
	}
	return d
}

// StartKey is the idempotency key of the start of the stream named name.
func StartKey(name string) string { return "start:" + name }

// StopKey is the idempotency key of the stop of the stream named name.
func StopKey(name string) string { return "stop:" + name }

func (m *Manager) backoff(attempt int) time.Duration {
	d := m.cfg.BackoffBase << min(attempt-1, 20)
	if d <= 0 || d > m.cfg.BackoffMax {
		d = m.cfg.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(d)) + 1) // full jitter
}

func (m *Manager) succeeded() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fails >= m.cfg.BreakerFails {
		m.log.Info("Twilio answers again: circuit closed")
	}
	m.fails = 0
	m.m.circuit.Set(0)
}

func (m *Manager) failed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fails++
	if m.fails >= m.cfg.BreakerFails {
		m.openUntil = time.Now().Add(m.cfg.BreakerOpen)
		m.m.circuit.Set(1)
		m.log.Error("ALERT: Twilio keeps failing: circuit open, stream orders wait", "failures", m.fails, "until", m.openUntil)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
