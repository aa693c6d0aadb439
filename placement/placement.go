// Package placement chooses a recorder for each new stream of a media
// adapter and moves a recorder's streams to another one when it fails.
//
// The adapter keeps one link (internal/link.Client) per recorder it sends
// to. A new stream goes to the recorder the membership picks (most free
// capacity, healthy, not draining), counting the streams this adapter
// opened since the recorder last reported its load, so a burst spreads;
// ties go by a hash of the adapter's id and the recorder's name, so that
// adapters placing at the same moment do not herd onto one recorder. The
// copies of a dual-stream pair, which reach different adapters, go instead
// to the recorder a rendezvous hash of the call and the pair ranks first,
// which every adapter computes alike (rank.go). With dual recording a
// stream is opened twice, on two different recorders (OpenReplicas).
// When a recorder dies (membership says so) or cannot be reached for
// FailoverAfter, its link dials another recorder instead: the link's
// reconnect replays every unacknowledged frame there with a Resume, and
// that recorder writes a continuation segment linked to the first INUM.
// No acknowledged frame is lost; the call's recording gets a second
// segment marked as a failover.
package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
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

// Placer implements the media adapter's Opener and ReplicaOpener over a
// pool of recorders.
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
	decisions *prometheus.CounterVec
	failovers prometheus.Counter
	noRec     prometheus.Counter
	linkM     *link.Metrics // shared by every link
}

// recLink is one link to a recorder; bound changes on failover.
type recLink struct {
	id     string
	client *link.Client

	mu         sync.Mutex
	bound      string // recorder name
	addr       string
	failingAt  time.Time // first dial of the current run of attempts
	acksAtDial int64     // the client's acks when it last dialed
	opened     int       // streams opened here since the last load report
	lastSeen   int       // the recorder's Active when opened was reset
	cancel     context.CancelFunc
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
		placed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_placements_total", Help: "Streams placed on a recorder, by recorder."}, []string{"recorder"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_placement_decisions_total",
			Help: "Streams placed on a recorder, by how it was chosen: single (least loaded), pair (rendezvous ranking of a dual-stream pair), replica (least loaded not holding the stream's other replica)."}, []string{"kind"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_failovers_total", Help: "Links moved to another recorder because theirs failed."}),
		noRec:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_placement_no_recorder_total", Help: "Streams opened while no recorder was available (kept in retention until one is)."}),
	}
	p.linkM = link.NewMetrics(cfg.Registerer)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(p.placed, p.decisions, p.failovers, p.noRec)
	}
	return p
}

// Open implements mediaadapter.Opener: the stream goes to the least loaded
// recorder, or, for a copy of a dual-stream pair, to the recorder the pair's
// rendezvous ranking puts first (see rankPair). With no recorder available
// it goes on a link bound to none, whose frames wait in retention until a
// recorder is reachable.
func (p *Placer) Open(info callrec.StreamInfo) *link.Stream {
	return p.open(info, 1)[0]
}

// OpenReplicas implements mediaadapter.ReplicaOpener (dual recording): it
// opens n copies of the stream, Replica 1..n, each on a different recorder,
// choosing them together under one lock. An unpaired stream's replica 1 goes
// where Open would put it and each further replica to the least loaded
// recorder not already holding one; a pair copy's replica k goes to the k-th
// recorder of the pair's rendezvous ranking, so every copy's replica k meets
// on the same recorder.
//
// With fewer recorders available than replicas, it opens as many replicas
// as there are recorders (at least one, which waits in retention when there
// is none) and returns fewer than n streams: the caller records the stream
// fewer times and says so. Parking the missing replicas in retention
// instead would hold up to RetainBytes per stream for as long as the pool
// stays short (unbounded in time, 1 MiB a call), fill to overflow within
// a minute anyway, and keep shutdown waiting on recordings that may never
// start.
func (p *Placer) OpenReplicas(info callrec.StreamInfo, n int) []*link.Stream {
	return p.open(info, max(n, 1))
}

// open places n replicas of a stream (n == 1: the stream itself, Replica
// left as given).
func (p *Placer) open(info callrec.StreamInfo, n int) []*link.Stream {
	recs := p.cfg.Recorders.Recorders()
	// One lock across choosing and opening: concurrent opens see each
	// other's counts, and a link is never retired under a new stream.
	p.mu.Lock()
	defer p.mu.Unlock()
	var chosen []Recorder
	var kinds []string
	if info.Pair != nil {
		ranked := rankPair(recs, info)
		first := 0
		if n == 1 && info.Replica > 1 { // a lone replica k of a pair copy
			first = min(info.Replica-1, max(len(ranked)-1, 0))
		}
		for i := first; i < len(ranked) && len(chosen) < n; i++ {
			chosen, kinds = append(chosen, ranked[i]), append(kinds, kindPair)
		}
	} else {
		rest := recs
		for len(chosen) < n {
			rec, ok := p.pickLocked(rest)
			if !ok {
				break
			}
			kind := kindSingle
			if len(chosen) > 0 {
				kind = kindReplica
			}
			chosen, kinds = append(chosen, rec), append(kinds, kind)
			if len(chosen) < n {
				rest = slices.DeleteFunc(slices.Clone(rest), func(r Recorder) bool { return r.Name == rec.Name })
			}
		}
	}
	out := make([]*link.Stream, 0, n)
	if len(chosen) == 0 {
		p.noRec.Inc()
		l := p.unboundLinkLocked()
		l.mu.Lock()
		l.opened++
		l.mu.Unlock()
		p.placed.WithLabelValues("").Inc()
		if n > 1 {
			info.Replica = 1
		}
		return append(out, l.client.Open(info))
	}
	for i, rec := range chosen {
		l := p.links[rec.Name]
		if l == nil {
			l = p.newLinkLocked(rec)
		}
		l.mu.Lock()
		l.opened++
		name := l.bound
		l.mu.Unlock()
		p.placed.WithLabelValues(name).Inc()
		p.decisions.WithLabelValues(kinds[i]).Inc()
		if n > 1 {
			info.Replica = i + 1
		}
		out = append(out, l.client.Open(info))
	}
	return out
}

// Kinds of placement decision (callrec_placement_decisions_total).
const (
	kindSingle  = "single"  // least loaded recorder
	kindPair    = "pair"    // rendezvous ranking of a dual-stream pair
	kindReplica = "replica" // least loaded recorder not holding another replica of the stream
)

// unboundLinkLocked returns the link bound to no recorder, made if needed.
func (p *Placer) unboundLinkLocked() *recLink {
	for _, x := range p.all {
		x.mu.Lock()
		unbound := x.bound == ""
		x.mu.Unlock()
		if unbound {
			return x
		}
	}
	return p.newLinkLocked(Recorder{})
}

// pickLocked chooses the recorder with the most free room, counting what
// this adapter opened on each since its last report. A recorder of unknown
// capacity counts as having plenty, less what it runs. Ties go by a hash of
// this adapter's id and the recorder's name: by name, every adapter would
// send its burst, and every link of a dead recorder, to the same one.
func (p *Placer) pickLocked(recs []Recorder) (Recorder, bool) {
	if len(recs) == 0 {
		return Recorder{}, false
	}
	scores := make([]int, len(recs))
	top := 0
	for i, r := range recs {
		score := r.Free
		if score < 0 {
			score = 1<<20 - r.Active
		}
		if l := p.links[r.Name]; l != nil {
			l.mu.Lock()
			if r.Active != l.lastSeen { // a fresh report includes what we opened
				l.lastSeen, l.opened = r.Active, 0
			}
			score -= l.opened
			l.mu.Unlock()
		}
		scores[i] = score
		if i == 0 || score > top {
			top = score
		}
	}
	// Among the recorders within pickSlack of the most room (gossip is a
	// moment old, and other adapters place too), the one carrying fewest
	// of this adapter's own streams: each adapter spreads its share evenly
	// whatever the gossip's lag, so the pool's sum is even too.
	best, bestMine, bestTie := -1, 0, uint64(0)
	for i, r := range recs {
		if scores[i] < top-pickSlack {
			continue
		}
		mine := 0
		if l := p.links[r.Name]; l != nil {
			mine = l.client.Active()
		}
		tie := hash64(p.cfg.AdapterID, r.Name)
		if best < 0 || mine < bestMine || (mine == bestMine && (scores[i] > scores[best] || scores[i] == scores[best] && tie > bestTie)) {
			best, bestMine, bestTie = i, mine, tie
		}
	}
	return recs[best], true
}

// pickSlack is how much less room (streams) than the roomiest recorder a
// recorder may have and still be picked for carrying fewer of this
// adapter's streams.
const pickSlack = 2

func (p *Placer) newLinkLocked(rec Recorder) *recLink {
	p.nextID++
	ctx, cancel := context.WithCancel(p.ctx)
	l := &recLink{id: fmt.Sprintf("%s-%d", p.cfg.AdapterID, p.nextID), bound: rec.Name, addr: rec.Addr, cancel: cancel}
	l.client = link.NewClient(link.ClientConfig{AdapterID: l.id, RetainBytes: p.cfg.RetainBytes, Metrics: p.linkM,
		Log:  p.log.With("link", l.id),
		Dial: func(ctx context.Context) (net.Conn, error) { return p.dial(ctx, l) }})
	if rec.Name != "" {
		p.links[rec.Name] = l
	}
	p.all = append(p.all, l)
	p.wg.Go(func() { _ = l.client.Run(ctx) })
	return l
}

// errRetired stops a link whose recorder left while it carried no stream.
var errRetired = errors.New("placement: link retired")

// dial connects a link. It stays with its recorder while membership calls
// it alive and the current run of failures is shorter than FailoverAfter;
// a run ends when a connection made progress (acknowledgements came) or
// the link carried no stream. Past that, or once the recorder left, the
// link moves to another recorder (a failover when it carries streams).
// With no other recorder, it keeps trying its own while that is alive.
func (p *Placer) dial(ctx context.Context, l *recLink) (net.Conn, error) {
	now := time.Now()
	acks := l.client.Stats.Acks.Load()
	active := l.client.Active()
	l.mu.Lock()
	if acks > l.acksAtDial || active == 0 || l.failingAt.IsZero() {
		l.failingAt = now // a new run of attempts starts with this one
	}
	l.acksAtDial = acks
	bound, failingAt := l.bound, l.failingAt
	l.mu.Unlock()

	addr, alive := "", false
	if bound != "" {
		addr, alive = p.cfg.Recorders.Alive(bound)
	}
	if alive && now.Sub(failingAt) < p.cfg.FailoverAfter {
		return p.dialTimeout(ctx, addr, p.cfg.FailoverAfter-now.Sub(failingAt))
	}
	if !alive && bound != "" && active == 0 && p.retire(l) {
		return nil, errRetired
	}
	rec, ok := p.pickExcept(bound)
	if !ok {
		if alive {
			return p.dialTimeout(ctx, addr, p.cfg.FailoverAfter)
		}
		return nil, callrec.Errorf(callrec.EUNAVAILABLE, "no recorder available for link %s (was on %q)", l.id, bound)
	}
	conn, err := p.dialTimeout(ctx, rec.Addr, p.cfg.FailoverAfter)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if bound != "" && p.links[bound] == l {
		delete(p.links, bound)
	}
	if p.links[rec.Name] == nil {
		p.links[rec.Name] = l
	}
	l.mu.Lock()
	l.bound, l.addr, l.failingAt, l.opened = rec.Name, rec.Addr, now, 0
	l.mu.Unlock()
	p.mu.Unlock()
	if bound != "" && active > 0 {
		p.failovers.Inc()
		p.log.Warn("recorder lost: link moved to another recorder; unacknowledged frames are replayed there",
			"link", l.id, "from", bound, "to", rec.Name, "streams", active, "alive", alive)
	}
	return conn, nil
}

// retire drops an idle link whose recorder left, unless a stream was
// opened on it meanwhile.
func (p *Placer) retire(l *recLink) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.client.Active() > 0 {
		return false
	}
	l.mu.Lock()
	bound := l.bound
	l.mu.Unlock()
	if p.links[bound] == l {
		delete(p.links, bound)
	}
	p.all = slices.DeleteFunc(p.all, func(x *recLink) bool { return x == l })
	l.cancel()
	p.log.Info("link retired: its recorder left", "link", l.id, "recorder", bound)
	return true
}

func (p *Placer) dialTimeout(ctx context.Context, addr string, d time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, max(d, 100*time.Millisecond))
	defer cancel()
	return p.cfg.Dial(ctx, addr)
}

func (p *Placer) pickExcept(name string) (Recorder, bool) {
	var out []Recorder
	for _, r := range p.cfg.Recorders.Recorders() {
		if r.Name != name {
			out = append(out, r)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pickLocked(out)
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
