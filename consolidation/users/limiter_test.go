package users

import (
	"testing"
	"time"
)

// newTestLimiter returns a limiter with default limits on a fake clock.
func newTestLimiter(t *testing.T) (*Limiter, *fakeClock) {
	t.Helper()
	c := &fakeClock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	return NewLimiter(LimiterConfig{Now: c.now}), c
}

// wantAllow fails unless Allow(user, ip) answers ok and retry.
func wantAllow(t *testing.T, l *Limiter, user, ip string, ok bool, retry time.Duration) {
	t.Helper()
	gotOK, gotRetry := l.Allow(user, ip)
	if gotOK != ok || gotRetry != retry {
		t.Fatalf("Allow(%q, %q) = %v, %v; want %v, %v", user, ip, gotOK, gotRetry, ok, retry)
	}
}

func TestLimiterLocksAndUnlocks(t *testing.T) {
	l, c := newTestLimiter(t)
	for range 4 {
		l.Failed("alice", "10.0.0.1")
		c.advance(time.Minute)
	}
	wantAllow(t, l, "alice", "10.0.0.1", true, 0)
	l.Failed("ALICE", "10.0.0.1") // fifth failure, any case
	wantAllow(t, l, "alice", "10.0.0.1", false, 15*time.Minute)
	wantAllow(t, l, "alice", "10.9.9.9", false, 15*time.Minute) // the username is locked from anywhere
	wantAllow(t, l, "bob", "10.0.0.1", true, 0)                 // the IP is not (yet)
	c.advance(10 * time.Minute)
	wantAllow(t, l, "alice", "", false, 5*time.Minute)
	c.advance(5 * time.Minute)
	wantAllow(t, l, "alice", "10.0.0.1", true, 0)

	// Five more failures: the second lock lasts twice as long.
	for range 5 {
		l.Failed("alice", "10.0.0.1")
	}
	wantAllow(t, l, "alice", "10.0.0.1", false, 30*time.Minute)
}

func TestLimiterSlidingWindow(t *testing.T) {
	l, c := newTestLimiter(t)
	for range 4 {
		l.Failed("alice", "")
	}
	c.advance(16 * time.Minute) // those four have left the window
	l.Failed("alice", "")
	wantAllow(t, l, "alice", "", true, 0)
}

func TestLimiterSuccessResets(t *testing.T) {
	l, c := newTestLimiter(t)
	for range 5 {
		l.Failed("alice", "10.0.0.1")
	}
	c.advance(15 * time.Minute)
	l.Succeeded("alice", "10.0.0.1")
	for range 4 {
		l.Failed("alice", "10.0.0.1")
	}
	wantAllow(t, l, "alice", "", true, 0)
	l.Failed("alice", "10.0.0.1")
	wantAllow(t, l, "alice", "", false, 15*time.Minute) // backoff history was cleared too
}

func TestLimiterPerIP(t *testing.T) {
	l, c := newTestLimiter(t)
	for i := range 20 {
		l.Failed(string(rune('a'+i)), "10.0.0.1") // spraying 20 names
	}
	wantAllow(t, l, "zoe", "10.0.0.1", false, 15*time.Minute)
	wantAllow(t, l, "zoe", "10.0.0.2", true, 0)
	l.Succeeded("zoe", "10.0.0.1") // a valid login does not unlock the IP
	wantAllow(t, l, "zoe", "10.0.0.1", false, 15*time.Minute)
	c.advance(15 * time.Minute)
	wantAllow(t, l, "zoe", "10.0.0.1", true, 0)
}

func TestLimiterBackoffCapAndForget(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(LimiterConfig{UserFailures: 1, Lock: time.Hour, MaxLock: 3 * time.Hour, Now: c.now})
	for _, want := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour} {
		l.Failed("alice", "")
		wantAllow(t, l, "alice", "", false, want)
		c.advance(want)
	}
	c.advance(3 * time.Hour) // quiet for MaxLock: history forgotten
	l.Failed("alice", "")
	wantAllow(t, l, "alice", "", false, time.Hour)
	c.advance(4 * time.Hour)
	l.Failed("bob", "") // sweeps alice
	if _, ok := l.keys[userKey("alice")]; ok {
		t.Fatal("quiet key was not swept")
	}
}
