// Package placement chooses a recorder for each new stream of a media
// adapter and moves a recorder's streams to another one when it fails.
//
// The adapter keeps one link (internal/link.Client) per recorder it sends
// to. A new stream goes to the recorder the membership picks (most free
// capacity, healthy, not draining), counting the streams this adapter
// opened since the recorder last reported its load, so a burst spreads.
// When a recorder dies (membership says so) or cannot be reached for
// FailoverAfter, its link dials another recorder instead: the link's
// reconnect replays every unacknowledged frame there with a Resume, and
// that recorder writes a continuation segment linked to the first INUM.
// No acknowledged frame is lost; the call's recording gets a second
// segment marked as a failover.
package placement

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/link"
)

// Recorder is a recorder node as membership sees it.
type Recorder struct {
	Name   string // membership name
	Addr   string // link address host:port
	Free   int    // streams it can still take (capacity - active), -1 if unknown
	Active int
}

// Recorders is the membership view placement needs (the pool package).
type Recorders interface {
	// Recorders lists the live, non-draining recorders.
	Recorders() []Recorder
	// Alive reports whether a recorder is still a live member (draining
	// ones included: they finish their streams) and its address.
	Alive(name string) (addr string, ok bool)
}

// Config configures a Placer.
type Config struct {
	AdapterID   string
	Recorders   Recorders
	RetainBytes int
	// FailoverAfter is how long a link may fail to reach its recorder
	// while membership still calls it alive before the link moves to
	// another recorder [3s].
	FailoverAfter time.Duration
	Dial          func(ctx context.Context, addr string) (net.Conn, error) // [net.Dialer]
	Log           *slog.Logger
	Registerer    prometheus.Registerer
}

// Placer implements the media adapter's Opener over a pool of recorders.
type Placer struct {
	cfg Config
	log *slog.Logger
	ctx context.Context

	mu     sync.Mutex
	links  map[string]*recLink // by the recorder each link is bound to now
	all    []*recLink
	nextID int
	wg     sync.WaitGroup

	placed    *prometheus.CounterVec
	failovers prometheus.Counter
	noRec     prometheus.Counter
}

// recLink is one link to a recorder; bound changes on failover.
type recLink struct {
	id     string
	client *link.Client

	mu        sync.Mutex
	bound     string // recorder name
	addr      string
	failingAt time.Time // first failed dial of the current run of failures
	opened    int       // streams opened here since the last load report
	lastSeen  int       // the recorder's Active when opened was reset
}

// New returns a Placer; its links run until ctx is done (then Wait).
func New(ctx context.Context, cfg Config) *Placer {
	if cfg.FailoverAfter == 0 {
		cfg.FailoverAfter = 3 * time.Second
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Placer{cfg: cfg, log: cfg.Log.With(callrec.LogKeyComponent, "placement"), ctx: ctx, links: map[string]*recLink{},
		placed:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_placements_total", Help: "Streams placed on a recorder, by recorder."}, []string{"recorder"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_failovers_total", Help: "Links moved to another recorder because theirs failed."}),
		noRec:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_placement_no_recorder_total", Help: "Streams opened while no recorder was available (kept in retention until one is)."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(p.placed, p.failovers, p.noRec)
	}
	return p
}

// Open implements mediaadapter.Opener: the stream goes to the least loaded
// recorder. With no recorder available it is opened on an existing link
// (its frames wait in retention until a recorder is reachable).
func (p *Placer) Open(info callrec.StreamInfo) *link.Stream {
	rec, ok := p.pick(p.cfg.Recorders.Recorders())
	p.mu.Lock()
	var l *recLink
	if ok {
		l = p.links[rec.Name]
		if l == nil {
			l = p.newLinkLocked(rec)
		}
	} else {
		p.noRec.Inc()
		if len(p.all) > 0 {
			l = p.all[0]
		} else {
			l = p.newLinkLocked(Recorder{})
		}
	}
	p.mu.Unlock()
	l.mu.Lock()
	l.opened++
	name := l.bound
	l.mu.Unlock()
	p.placed.WithLabelValues(name).Inc()
	return l.client.Open(info)
}

// pick chooses the recorder with the most free room, counting what this
// adapter opened on each since its last report.
func (p *Placer) pick(recs []Recorder) (Recorder, bool) {
	best, bestScore := -1, 0
	for i, r := range recs {
		score := r.Free
		if score < 0 {
			score = 1 << 20
		}
		score -= r.Active
		p.mu.Lock()
		if l := p.links[r.Name]; l != nil {
			l.mu.Lock()
			if r.Active != l.lastSeen { // a fresh report includes what we opened
				l.lastSeen, l.opened = r.Active, 0
			}
			score -= l.opened
			l.mu.Unlock()
		}
		p.mu.Unlock()
		if best < 0 || score > bestScore || (score == bestScore && r.Name < recs[best].Name) {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return Recorder{}, false
	}
	return recs[best], true
}

func (p *Placer) newLinkLocked(rec Recorder) *recLink {
	p.nextID++
	l := &recLink{id: fmt.Sprintf("%s-%d", p.cfg.AdapterID, p.nextID), bound: rec.Name, addr: rec.Addr}
	l.client = link.NewClient(link.ClientConfig{AdapterID: l.id, RetainBytes: p.cfg.RetainBytes,
		Log:  p.log.With("link", l.id),
		Dial: func(ctx context.Context) (net.Conn, error) { return p.dial(ctx, l) }})
	if rec.Name != "" {
		p.links[rec.Name] = l
	}
	p.all = append(p.all, l)
	p.wg.Go(func() { _ = l.client.Run(p.ctx) })
	return l
}

// dial connects a link to its recorder, or fails it over to another when
// its recorder left the pool or has been unreachable for FailoverAfter.
func (p *Placer) dial(ctx context.Context, l *recLink) (net.Conn, error) {
	l.mu.Lock()
	bound, addr, failingAt := l.bound, l.addr, l.failingAt
	l.mu.Unlock()
	if bound != "" {
		if a, ok := p.cfg.Recorders.Alive(bound); ok {
			addr = a
			if failingAt.IsZero() || time.Since(failingAt) < p.cfg.FailoverAfter {
				conn, err := p.cfg.Dial(ctx, addr)
				if err == nil {
					l.mu.Lock()
					l.addr, l.failingAt = addr, time.Time{}
					l.mu.Unlock()
					return conn, nil
				}
				l.mu.Lock()
				if l.failingAt.IsZero() {
					l.failingAt = time.Now()
				}
				l.mu.Unlock()
				return nil, err
			}
		}
	}
	// Fail over (or bind a link opened while no recorder was known).
	rec, ok := p.pickExcept(bound)
	if !ok {
		return nil, callrec.Errorf(callrec.EUNAVAILABLE, "no recorder available for link %s (was on %q)", l.id, bound)
	}
	conn, err := p.cfg.Dial(ctx, rec.Addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.links[bound] == l {
		delete(p.links, bound)
	}
	if p.links[rec.Name] == nil {
		p.links[rec.Name] = l
	}
	p.mu.Unlock()
	l.mu.Lock()
	l.bound, l.addr, l.failingAt, l.opened = rec.Name, rec.Addr, time.Time{}, 0
	l.mu.Unlock()
	if bound != "" {
		p.failovers.Inc()
		p.log.Warn("recorder lost: link moved to another recorder; unacknowledged frames are replayed there",
			"link", l.id, "from", bound, "to", rec.Name, "streams", l.client.Active())
	}
	return conn, nil
}

func (p *Placer) pickExcept(name string) (Recorder, bool) {
	var out []Recorder
	for _, r := range p.cfg.Recorders.Recorders() {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return p.pick(out)
}

// Connected reports whether every link is connected (for readiness).
func (p *Placer) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.all {
		if !l.client.Connected() {
			return false
		}
	}
	return true
}

// Active counts the streams open on all links.
func (p *Placer) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.all {
		n += l.client.Active()
	}
	return n
}

// Wait waits until every stream is finished (acknowledged) or ctx is done.
func (p *Placer) Wait(ctx context.Context) error {
	p.mu.Lock()
	all := append([]*recLink(nil), p.all...)
	p.mu.Unlock()
	for _, l := range all {
		if err := l.client.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Done waits for the links to stop after the context given to New is done.
func (p *Placer) Done() { p.wg.Wait() }
