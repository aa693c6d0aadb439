package simulate

import (
	"sync"
	"time"
)

// CallClock is the media clock of one call: every Media Stream forked from
// the call (the copies of a dual-stream pair, a replacement after a
// stream-error) carries the same call audio, as Twilio forks the same
// call. The call's audio begins (its epoch) when its first stream starts
// sending audio; a stream starting later, at time t, starts at call frame
// round((t − epoch) / 20 ms) of the same audio loop, so streams running at
// the same time carry the same audio at the same moment, give or take
// their sending jitter.
//
// Without real time (Config.Realtime false) frames are not tied to the
// wall clock: every stream of the call starts at call frame 0, so all of
// them carry the same audio from their chunk 1 on, however late they start.
//
// It is safe for concurrent use.
type CallClock struct {
	mu    sync.Mutex
	epoch time.Time
}

// NewCallClock returns the clock of a call whose audio has not begun.
func NewCallClock() *CallClock { return &CallClock{} }

// frame returns the call frame a stream starting its audio at now begins
// with, and begins the call's audio if it had not.
func (c *CallClock) frame(now time.Time, realtime bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.IsZero() {
		c.epoch = now
		return 0
	}
	if !realtime {
		return 0
	}
	d := now.Sub(c.epoch)
	if d <= 0 {
		return 0
	}
	return int((d + FrameDuration/2) / FrameDuration)
}
