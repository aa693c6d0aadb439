package simulate

import (
	"context"
	"maps"
)

// StreamSpec is a Media Stream Twilio opens because the Start Stream API
// was called: the call and stream SIDs Twilio chose, and exactly the custom
// parameters given in the request.
type StreamSpec struct {
	CallSID, StreamSID string
	Params             map[string]string
	// Index picks where in the audio clips the call starts (different calls
	// get different audio).
	Index int
	// Cut, when closed, cuts the stream's TCP connection without stop: a
	// network failure, which Twilio reports as stream-error.
	Cut <-chan struct{}
	// Clock, when set, is the media clock of the call the stream forks:
	// every stream given the same Clock (and Index) carries the same call
	// audio, the later ones starting where the call is (see CallClock).
	// Nil: the stream is a call of its own, starting at the call's frame 0.
	Clock *CallClock
}

// Stream plays one Media Stream as spec says, with cfg's URL, signature,
// tracks, impairments and KeepAudio (cfg.Calls and cfg.RampUp are ignored).
// It runs for at most cfg.Duration; cancelling ctx ends it with stop, as
// Twilio does when the stream is stopped through the API or the call ends.
// The error is for a bad configuration only; the call's failure is in the
// result.
func Stream(ctx context.Context, cfg Config, spec StreamSpec) (CallResult, error) {
	s, err := cfg.settings()
	if err != nil {
		return CallResult{}, err
	}
	loops()
	var res CallResult
	c := newCall(s, spec.Index, &res)
	res.CallSID, res.StreamSID = spec.CallSID, spec.StreamSID
	c.st = newStream(s.accountSID, spec.CallSID, spec.StreamSID)
	c.params = maps.Clone(spec.Params)
	c.cut = spec.Cut
	c.clock = spec.Clock
	if c.params == nil {
		c.params = map[string]string{}
	}
	c.run(ctx)
	return res, nil
}
