package users

import (
	"strings"
	"sync"
	"time"
)

// LimiterConfig tunes a Limiter. Zero fields take the defaults in brackets.
type LimiterConfig struct {
	UserFailures int              // failures per Window that lock a username [5]
	IPFailures   int              // failures per Window that lock a remote IP [20]
	Window       time.Duration    // sliding window failures are counted in [15m]
	Lock         time.Duration    // first lock; each further lock doubles it [15m]
	MaxLock      time.Duration    // longest lock; also how long a key must stay quiet (no failure, no lock) to forget its lock history [24h]
	Now          func() time.Time // the clock [time.Now]
}

// Limiter rate-limits logins per username and per remote IP, in memory.
// Failures are counted in a sliding Window; reaching the limit locks that key
// for Lock, doubling with each further lock (exponential backoff) up to
// MaxLock; a key quiet for MaxLock starts over. A success clears the
// username's failures and lock history, not the IP's (so a valid login
// cannot reset a password-spraying IP). Quiet keys are dropped from memory. It is safe for concurrent use.
type Limiter struct {
	cfg LimiterConfig

	mu        sync.Mutex
	keys      map[string]*keyState
	lastSweep time.Time
}

// keyState is what the limiter remembers about one username or IP.
type keyState struct {
	failures    []time.Time // within Window, oldest first
	lockedUntil time.Time
	locks       int       // consecutive locks, for the backoff
	last        time.Time // last failure
}

// NewLimiter returns a Limiter with cfg, defaults filled in.
func NewLimiter(cfg LimiterConfig) *Limiter {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.UserFailures <= 0 {
		cfg.UserFailures = 5
	}
	if cfg.IPFailures <= 0 {
		cfg.IPFailures = 20
	}
	def(&cfg.Window, 15*time.Minute)
	def(&cfg.Lock, 15*time.Minute)
	def(&cfg.MaxLock, 24*time.Hour)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, keys: make(map[string]*keyState)}
}

// userKey and ipKey name the two kinds of keys; usernames are compared
// case-insensitively so "Alice" cannot dodge the lock on "alice".
func userKey(user string) string { return "u\x00" + strings.ToLower(user) }
func ipKey(ip string) string     { return "i\x00" + ip }

// Allow reports whether a login for user from ip may be attempted now, and
// if not, how long until it may. An empty user or ip is not checked.
func (l *Limiter) Allow(user, ip string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	var wait time.Duration
	for _, k := range l.keysFor(user, ip) {
		if s := l.keys[k]; s != nil && now.Before(s.lockedUntil) {
			wait = max(wait, s.lockedUntil.Sub(now))
		}
	}
	return wait == 0, wait
}

// Failed records a failed login for user from ip.
func (l *Limiter) Failed(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	l.sweep(now)
	for _, k := range l.keysFor(user, ip) {
		limit := l.cfg.UserFailures
		if strings.HasPrefix(k, "i\x00") {
			limit = l.cfg.IPFailures
		}
		s := l.keys[k]
		if s == nil {
			s = &keyState{}
			l.keys[k] = s
		}
		if now.Before(s.lockedUntil) {
			continue // already locked; callers should not have tried
		}
		if now.Sub(s.quietSince()) >= l.cfg.MaxLock {
			s.locks = 0
		}
		s.last = now
		s.failures = append(pruned(s.failures, now.Add(-l.cfg.Window)), now)
		if len(s.failures) >= limit {
			s.locks++
			s.lockedUntil = now.Add(l.lockFor(s.locks))
			s.failures = nil
		}
	}
}

// Succeeded records a successful login: user's failures and lock history are
// cleared; ip's are kept.
func (l *Limiter) Succeeded(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if user != "" {
		delete(l.keys, userKey(user))
	}
}

// keysFor returns the keys to check for user and ip.
func (l *Limiter) keysFor(user, ip string) []string {
	var ks []string
	if user != "" {
		ks = append(ks, userKey(user))
	}
	if ip != "" {
		ks = append(ks, ipKey(ip))
	}
	return ks
}

// quietSince returns when the key's last failure or lock ended.
func (s *keyState) quietSince() time.Time {
	if s.lockedUntil.After(s.last) {
		return s.lockedUntil
	}
	return s.last
}

// lockFor returns the length of the n-th consecutive lock.
func (l *Limiter) lockFor(n int) time.Duration {
	d := l.cfg.Lock
	for i := 1; i < n && d < l.cfg.MaxLock; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxLock)
}

// pruned drops the failures before cutoff.
func pruned(fs []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(fs) && fs[i].Before(cutoff) {
		i++
	}
	return fs[i:]
}

// sweep forgets keys that have been quiet for MaxLock,
// at most once per Window.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.cfg.Window {
		return
	}
	l.lastSweep = now
	for k, s := range l.keys {
		if now.Sub(s.quietSince()) >= l.cfg.MaxLock {
			delete(l.keys, k)
		}
	}
}
