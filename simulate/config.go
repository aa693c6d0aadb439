package simulate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"
)

// DefaultAccountSID is the fake account SID used when Config.AccountSID is
// empty (the account of the shared scenario in testdata/twilio).
const DefaultAccountSID = "ACe268443e43d93dab7ebef303bbe9642f"

// FrameDuration is the audio carried by one media message: 160 μ-law samples.
const FrameDuration = 20 * time.Millisecond

// FrameBytes is the size of one media message's decoded payload.
const FrameBytes = 160

// Track selections for Config.Tracks.
const (
	TracksBoth    = "both"
	TracksInbound = "inbound"
)

// Timing constants of a call.
const (
	// maxBurst is how many frames per track a late tick may send at once to
	// catch up; a longer stall is forgotten instead (timestamps stay exact).
	maxBurst = 3
	// writeTimeout bounds each write, so a server that stops reading cannot
	// hang a call forever.
	writeTimeout = 10 * time.Second
	// closeGrace is how long a call waits, after its last message, for the
	// server to close the socket first (so its close code is recorded)
	// before sending its own close frame.
	closeGrace = 250 * time.Millisecond
)

// Config describes a simulation run. The zero value of every field except
// URL is usable.
type Config struct {
	// URL is the ws:// or wss:// URL to connect to.
	URL string
	// SignURL is the URL signed in X-Twilio-Signature: the URL Twilio was
	// given. It defaults to URL; it differs when a proxy sits in between.
	SignURL string
	// AuthToken signs the upgrade request; "" sends no signature header.
	AuthToken string
	// AccountSID goes into start and stop; default DefaultAccountSID.
	AccountSID string
	// Calls is the number of concurrent calls (all run at once); default 1.
	Calls int
	// Duration is the audio length per call; default 10s. It is rounded up
	// to whole 20 ms frames.
	Duration time.Duration
	// RampUp spreads the call starts evenly over this interval: call i
	// starts at i*RampUp/Calls. 0 starts all calls at once.
	RampUp time.Duration
	// Tracks is "both" (default: inbound and outbound) or "inbound".
	Tracks string
	// Drop is the per-frame probability of losing a frame in transit: it is
	// not sent, but its chunk, sequenceNumber and timestamp are consumed.
	Drop float64
	// Duplicate is the per-frame probability of sending a frame twice.
	Duplicate float64
	// Reorder is the per-frame probability of swapping a frame with the
	// next frame of its track (the next is sent first). A dropped frame, a
	// frame whose successor is dropped and a track's last frame are never
	// reordered.
	Reorder float64
	// CutAfter > 0 cuts the TCP connection (no stop, no close frame) after
	// this much audio, when it is at most Duration.
	CutAfter time.Duration
	// NoStop ends calls without a stop message (close frame only).
	NoStop bool
	// Seed seeds the per-call impairment generators (call i uses Seed and
	// i), so Drop, Duplicate and Reorder are reproducible. SIDs are always
	// random.
	Seed int64
	// Params are extra customParameters for every call; each call also gets
	// "call_index" (its index, which wins over a Params entry of that name).
	Params map[string]string
	// KeepAudio keeps each track's expected timeline in the result.
	KeepAudio bool
	// TLSConfig is used for wss:// URLs.
	TLSConfig *tls.Config
	// NetDial, when set, opens the TCP connections.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Realtime, default true, sends one frame per track every 20 ms of wall
	// time; false sends as fast as possible (fuzzing and benchmarks only).
	Realtime *bool
	// Log receives per-call lines; nil discards them.
	Log *slog.Logger
}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	signURL    string
	accountSID string
	calls      int
	frames     int // frames per track each call generates
	cut        bool
	both       bool
	realtime   bool
	log        *slog.Logger
}

func (c Config) settings() (*settings, error) {
	s := &settings{Config: c}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("simulate: bad URL: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("simulate: URL %q: scheme must be ws or wss", c.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("simulate: URL %q has no host", c.URL)
	}
	s.signURL = c.SignURL
	if s.signURL == "" {
		s.signURL = c.URL
	}
	s.accountSID = c.AccountSID
	if s.accountSID == "" {
		s.accountSID = DefaultAccountSID
	}
	switch {
	case c.Calls < 0:
		return nil, errors.New("simulate: Calls must not be negative")
	case c.Calls == 0:
		s.calls = 1
	default:
		s.calls = c.Calls
	}
	d := c.Duration
	switch {
	case d < 0:
		return nil, errors.New("simulate: Duration must not be negative")
	case d == 0:
		d = 10 * time.Second
	}
	if c.RampUp < 0 || c.CutAfter < 0 {
		return nil, errors.New("simulate: RampUp and CutAfter must not be negative")
	}
	s.frames = framesIn(d)
	if c.CutAfter > 0 && c.CutAfter <= d {
		s.frames = framesIn(c.CutAfter)
		s.cut = true
	}
	switch c.Tracks {
	case "", TracksBoth:
		s.both = true
	case TracksInbound:
	default:
		return nil, fmt.Errorf("simulate: Tracks %q: want %q or %q", c.Tracks, TracksBoth, TracksInbound)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"Drop", c.Drop}, {"Duplicate", c.Duplicate}, {"Reorder", c.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) {
			return nil, fmt.Errorf("simulate: %s probability %v not in [0,1]", p.name, p.v)
		}
	}
	s.realtime = c.Realtime == nil || *c.Realtime
	s.log = c.Log
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// framesIn is the number of 20 ms frames covering d, rounded up.
func framesIn(d time.Duration) int {
	return int((d + FrameDuration - 1) / FrameDuration)
}
