package pool

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"callrec"
)

// DefaultPort is the conventional gossip port (memberlist's), used for seeds
// given without a port when Config.BindPort is 0.
const DefaultPort = 7946

// Defaults for Config.
const (
	DefaultRefreshInterval = 2 * time.Second
	DefaultRejoinInterval  = 10 * time.Second
	DefaultLeaveTimeout    = 5 * time.Second
)

// Config configures a pool member.
type Config struct {
	// Name is the member's unique name in the pool. Default: the host name
	// plus a random suffix, so a restarted process (a Kubernetes pod keeps
	// its host name) never collides with its own not-yet-dead ghost, which
	// memberlist would reject as a conflicting address.
	Name string
	// BindAddr and BindPort are where gossip listens, TCP and UDP on the same
	// port. Defaults: 0.0.0.0 and 0, a random port (Self().Addr tells which).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what others dial (behind NAT or
	// when binding 0.0.0.0). Default: the bound address, or the first
	// private address when bound to 0.0.0.0. With BindPort 0, memberlist
	// advertises the port it bound, whatever AdvertisePort says.
	AdvertiseAddr string
	AdvertisePort int
	// Seeds are members to join: host:port, an IP, or a DNS name that may
	// resolve to many addresses (a Kubernetes headless service resolves to
	// every pod). Without a port, BindPort (or DefaultPort) is used. No seeds
	// starts a new pool.
	Seeds []string
	// SecretKey (16, 24 or 32 bytes: AES-128/192/256-GCM) encrypts and
	// authenticates all gossip and Drain messages; members without it cannot
	// join or talk to the pool. Operators must set it in production: without
	// it anyone who reaches the gossip port can join, announce fake
	// recorders, and drain nodes. See ParseSecretKey.
	SecretKey []byte
	// ExtraKeys are more keys accepted from others during a key rotation
	// (install the new key as extra everywhere, then make it SecretKey
	// everywhere, then drop the old one).
	ExtraKeys [][]byte
	// Cluster separates pools that share a network (staging and production):
	// members of different clusters ignore each other's traffic. It is not a
	// security boundary; SecretKey is.
	Cluster string
	// Meta returns the current local metadata. It is called from the pool's
	// own goroutines every RefreshInterval and on Update, so it must be safe
	// for concurrent use and quick.
	Meta func() Meta
	// RefreshInterval is how often Meta is read and, when it changed,
	// announced [2s].
	RefreshInterval time.Duration
	// RejoinInterval is how often seeds that are not live members are joined
	// again, which heals partitions (memberlist does not) [10s; 1s when Fast].
	RejoinInterval time.Duration
	// Fast tunes memberlist for loopback tests and demos: memberlist's
	// DefaultLocalConfig with the corrections in DESIGN.md §7 (RetransmitMult
	// 4, PushPullInterval 5s, SuspicionMaxTimeoutMult 2). Otherwise
	// DefaultLANConfig is used.
	Fast bool
	// OnDrain is called, once, when an operator drains this member (see
	// Drain). It must return promptly: start draining in the background. The
	// pool announces Draining itself. May be nil.
	OnDrain func()
	// Log receives the pool's and memberlist's log lines. Default: discard.
	Log *slog.Logger
	// Registerer, when set, receives the pool's metrics. Two pools in one
	// process need prometheus.WrapRegistererWith to tell them apart.
	Registerer prometheus.Registerer
}

// Validate reports whether c can be used by Join.
func (c *Config) Validate() error {
	if c.Meta == nil {
		return errors.New("pool config: Meta is required")
	}
	if err := checkKey(c.SecretKey); err != nil {
		return fmt.Errorf("pool config: secret key: %w", err)
	}
	for i, k := range c.ExtraKeys {
		if len(c.SecretKey) == 0 {
			return errors.New("pool config: extra keys need a secret key")
		}
		if err := checkKey(k); err != nil || len(k) == 0 {
			return fmt.Errorf("pool config: extra key %d: %v", i, err)
		}
	}
	if c.BindPort < 0 || c.BindPort > 65535 || c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return errors.New("pool config: port out of range")
	}
	if len(c.Cluster) > 200 {
		return errors.New("pool config: cluster name longer than 200 bytes")
	}
	if c.RefreshInterval < 0 || c.RejoinInterval < 0 {
		return errors.New("pool config: negative interval")
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s, 1); err != nil {
			return fmt.Errorf("pool config: seed %q: %w", s, err)
		}
	}
	return nil
}

func checkKey(k []byte) error {
	switch len(k) {
	case 0, 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%d bytes, want 16, 24 or 32", len(k))
}

// Pool is this process's membership in the callrec pool: it gossips the local
// Meta, tracks the other members, and picks members to send work to. Its
// methods are safe for concurrent use. Open one with Join; end it with Leave.
type Pool struct {
	cfg   Config
	log   *slog.Logger
	ml    *memberlist.Memberlist
	met   *metrics
	start time.Time

	gossipInterval time.Duration // memberlist's, paces announcements

	cancel  context.CancelFunc // stops the loops
	loops   sync.WaitGroup     // refresh, join and drain loops
	subsRun sync.WaitGroup     // subscriber goroutines

	announceMu sync.Mutex // serializes announce (UpdateNode)
	nudge      chan struct{}
	drainReqs  chan drainRequest
	joinedCh   chan struct{}
	closeOnce  sync.Once

	// mu guards what follows. memberlist calls the event delegate with its
	// own lock held, so nothing may call into memberlist while holding mu.
	mu           sync.Mutex
	members      map[string]*entry
	meta         []byte // the announced encoding; NodeMeta returns it
	announced    []byte // the same without its time stamp, to spot changes
	draining     bool   // drained by an operator or leaving
	leaving      bool   // Leave has begun
	drained      bool   // OnDrain was called
	joined       bool
	lastJoinErr  error
	joinFailures int
	acks         map[string]chan drainAck
	subs         map[*subscriber]struct{}
	closed       bool
	badMeta      map[string]bool // members whose meta did not decode (logged once)
}

// Join starts gossiping on cfg's address and joins cfg.Seeds. It returns once
// the first attempt is over, whether or not a seed answered: a node may start
// before its seeds, so the pool keeps joining in the background with backoff
// (WaitJoined waits for it). ctx bounds that first attempt only.
//
// Errors: an invalid Config, local Meta that does not fit (ErrInvalidMeta),
// the gossip port not bindable, or metrics already registered.
func Join(ctx context.Context, cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = defaultName()
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = DefaultRejoinInterval
		if cfg.Fast {
			cfg.RejoinInterval = time.Second
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var err error
	p := &Pool{
		cfg:       cfg,
		log:       cfg.Log.With(callrec.LogKeyComponent, "pool", callrec.LogKeyNode, cfg.Name),
		start:     time.Now(),
		nudge:     make(chan struct{}, 1),
		drainReqs: make(chan drainRequest, 16),
		joinedCh:  make(chan struct{}),
		members:   make(map[string]*entry),
		acks:      make(map[string]chan drainAck),
		subs:      make(map[*subscriber]struct{}),
		badMeta:   make(map[string]bool),
	}
	if p.announced, err = p.encodeLocal(time.Time{}); err != nil {
		return nil, fmt.Errorf("join pool: local meta: %w", err)
	}
	if p.meta, err = p.encodeLocal(time.Now()); err != nil {
		return nil, fmt.Errorf("join pool: local meta: %w", err)
	}
	if p.met, err = newMetrics(cfg.Registerer, p); err != nil {
		return nil, fmt.Errorf("join pool: %w", err)
	}

	mc := p.memberlistConfig()
	p.gossipInterval = mc.GossipInterval
	if p.ml, err = memberlist.Create(mc); err != nil {
		p.met.unregister()
		return nil, fmt.Errorf("join pool: start gossip on %s:%d: %w", mc.BindAddr, cfg.BindPort, err)
	}
	if len(cfg.SecretKey) == 0 {
		p.log.Warn("pool gossip is neither encrypted nor authenticated: anyone reaching the gossip port can join and drain members; set a secret key")
	}

	p.tryJoin(ctx, false)

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.loops.Add(3)
	go p.refreshLoop(runCtx)
	go p.joinLoop(runCtx)
	go p.drainLoop(runCtx)
	return p, nil
}

// memberlistConfig translates the pool config.
func (p *Pool) memberlistConfig() *memberlist.Config {
	cfg := p.cfg
	var mc *memberlist.Config
	if cfg.Fast {
		// DefaultLocalConfig alone was unreliable at five members (DESIGN.md §7).
		mc = memberlist.DefaultLocalConfig()
		mc.RetransmitMult = 4
		mc.PushPullInterval = 5 * time.Second
		mc.SuspicionMaxTimeoutMult = 2
	} else {
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	if mc.BindAddr == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort // 0: memberlist uses the port it bound
	}
	if len(cfg.SecretKey) > 0 {
		mc.SecretKey = cfg.SecretKey
		if len(cfg.ExtraKeys) > 0 {
			// NewKeyring puts the primary first; the errors were checked by Validate.
			kr, err := memberlist.NewKeyring(cfg.ExtraKeys, cfg.SecretKey)
			if err == nil {
				mc.Keyring = kr
			}
		}
	}
	// A member restarted under the same name (a StatefulSet pod) from a new
	// address is refused as a conflict until its old self is dead for this
	// long (memberlist's default, 0, refuses it until the dead entry is
	// reaped, GossipToTheDeadTime later).
	mc.DeadNodeReclaimTime = 10 * time.Second
	if cfg.Fast {
		mc.DeadNodeReclaimTime = time.Second
	}
	mc.Label = "callrec"
	if cfg.Cluster != "" {
		mc.Label = "callrec:" + cfg.Cluster
	}
	d := &delegate{p: p}
	mc.Delegate = d
	mc.Events = d
	mc.Logger = log.New(&logWriter{log: p.log}, "", 0)
	return mc
}

func defaultName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "callrec"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Name returns the local member's name.
func (p *Pool) Name() string { return p.cfg.Name }

// localMeta reads the application's metadata and adds what the pool knows.
func (p *Pool) localMeta() Meta {
	m := p.cfg.Meta()
	if m.Started.IsZero() {
		m.Started = p.start
	}
	if m.Version == "" {
		m.Version = callrec.Version
	}
	p.mu.Lock()
	m.Draining = m.Draining || p.draining
	p.mu.Unlock()
	return m
}

// encodeLocal returns the current local metadata encoded, stamped with at
// unless at is zero.
func (p *Pool) encodeLocal(at time.Time) ([]byte, error) {
	w := wireMeta{Meta: p.localMeta()}
	p.mu.Lock()
	w.Leaving = p.leaving
	p.mu.Unlock()
	if !at.IsZero() {
		w.At = at.UnixNano()
	}
	return encodeMeta(w)
}

// Update announces the local metadata soon, without waiting for the next
// refresh: call it after Active changed a lot or Draining was set. It does not
// block on the network. It returns ErrInvalidMeta (wrapped) when the metadata
// cannot be announced; the previous announcement then stays in force.
func (p *Pool) Update() error {
	if _, err := p.encodeLocal(time.Time{}); err != nil {
		return fmt.Errorf("update pool meta: %w", err)
	}
	select {
	case p.nudge <- struct{}{}:
	default: // an update is already due
	}
	return nil
}

// refreshLoop announces the local metadata when it changed, every
// RefreshInterval and on Update, and each change a second time at the next
// tick. Gossip is epidemic and lossy: in a small pool one member in a
// hundred misses a given broadcast and would keep a stale view until the
// next push/pull (30 s on a LAN); the repeat makes that rare. Metadata that
// stays the same is not re-broadcast after that; push/pull carries it.
func (p *Pool) refreshLoop(ctx context.Context) {
	defer p.loops.Done()
	t := time.NewTicker(p.cfg.RefreshInterval)
	defer t.Stop()
	repeat := false
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick = true
			p.pruneDeparted(time.Now())
		case <-p.nudge:
		}
		if ctx.Err() != nil {
			return
		}
		sent, changed := p.announce(tick && repeat)
		if changed {
			repeat = true
		} else if sent {
			repeat = false
		}
	}
}

// announce encodes the local metadata and, when it changed (or force), has
// memberlist broadcast it. It reports whether it announced and whether the
// metadata had changed.
func (p *Pool) announce(force bool) (sent, changed bool) {
	p.announceMu.Lock()
	defer p.announceMu.Unlock()
	// Compare without the time stamp, then stamp what is announced.
	now := time.Now()
	plain, err := p.encodeLocal(time.Time{})
	var stamped []byte
	if err == nil {
		stamped, err = p.encodeLocal(now)
	}
	if err != nil {
		p.met.announceErrors.Inc()
		p.log.Warn("pool meta not announced; others keep the previous one", callrec.LogKeyErr, err)
		return false, false
	}
	p.mu.Lock()
	changed = !bytes.Equal(plain, p.announced)
	if changed || force {
		p.announced, p.meta = plain, stamped
	}
	p.mu.Unlock()
	if !changed && !force {
		return false, false
	}
	// UpdateNode calls NodeMeta, which returns p.meta, and waits until the
	// broadcast has been retransmitted to enough members (for ever without a
	// timeout). Waiting one gossip interval is enough: only the newest
	// announcement of a member is gossiped in a round, so announcing more
	// often gains nothing, and a newer announcement supersedes this one in
	// the queue. This keeps the others' view of Active at most about two
	// gossip intervals old, which Pick's spreading depends on.
	_ = p.ml.UpdateNode(p.gossipInterval)
	return true, changed
}

// Leave announces Draining, tells the pool this member is leaving (others
// see it as left within about a second, not as dead), and shuts down. It
// waits up to timeout (DefaultLeaveTimeout when ≤ 0) for each broadcast.
// Leave and Shutdown are idempotent; after either, the Pool is unusable and
// subscriber channels are closed.
func (p *Pool) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultLeaveTimeout
	}
	var err error
	p.closeOnce.Do(func() {
		p.stopLoops()
		p.mu.Lock()
		p.draining, p.leaving = true, true
		p.mu.Unlock()
		// memberlist's delegates elsewhere cannot tell a leave from a crash;
		// announcing Leaving (and Draining) first tells them. UpdateNode
		// returns once the update was fully retransmitted, so the leave
		// message, which supersedes it in the queue, does not cut it short.
		if b, encErr := p.encodeLocal(time.Now()); encErr == nil {
			p.mu.Lock()
			p.meta = b
			p.mu.Unlock()
			_ = p.ml.UpdateNode(timeout)
		}
		if leaveErr := p.ml.Leave(timeout); leaveErr != nil {
			err = fmt.Errorf("leave pool: %w", leaveErr)
		}
		if shutErr := p.ml.Shutdown(); shutErr != nil && err == nil {
			err = fmt.Errorf("leave pool: %w", shutErr)
		}
		p.finish()
	})
	return err
}

// Shutdown stops gossiping without telling the pool, as a crash would: the
// others see this member dead only after failure detection (seconds). Prefer
// Leave.
func (p *Pool) Shutdown() error {
	var err error
	p.closeOnce.Do(func() {
		p.stopLoops()
		if shutErr := p.ml.Shutdown(); shutErr != nil {
			err = fmt.Errorf("shut down pool: %w", shutErr)
		}
		p.finish()
	})
	return err
}

// Close is Leave with DefaultLeaveTimeout.
func (p *Pool) Close() error { return p.Leave(DefaultLeaveTimeout) }

// stopLoops ends the refresh, join and drain loops and waits for them (a
// join in flight can take memberlist's TCP timeout: 10 s, 1 s when Fast).
func (p *Pool) stopLoops() {
	p.cancel()
	p.loops.Wait()
}

// finish closes subscriptions, waits for every goroutine and unregisters
// metrics.
func (p *Pool) finish() {
	p.mu.Lock()
	p.closed = true
	subs := p.subs
	p.subs = map[*subscriber]struct{}{}
	p.mu.Unlock()
	for s := range subs {
		s.stop()
	}
	p.subsRun.Wait()
	p.met.unregister()
}
