package pool

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"callrec"
)

// State is a member's liveness as this member sees it.
type State string

// Member states. memberlist's "suspect" (a probe failed, not yet confirmed)
// is not reported: its event delegate does not announce it, and its
// Members() hands out pointers that it keeps writing (a data race). A suspect
// member stays alive here until declared dead, as memberlist itself treats it
// for gossip.
const (
	StateAlive State = "alive"
	StateDead  State = "dead" // stopped answering probes (crashed, partitioned)
	StateLeft  State = "left" // left gracefully (Leave)
)

// Member is one member of the pool.
type Member struct {
	Name  string
	Addr  string // gossip address ip:port
	Meta  Meta
	State State
}

// EventType says what changed about a member.
type EventType string

// The event types.
const (
	EventJoin   EventType = "join"   // a new member, or one back from dead or left
	EventUpdate EventType = "update" // its Meta changed
	EventLeave  EventType = "leave"  // it left gracefully
	EventDead   EventType = "dead"   // it was declared dead
)

// Event is a change of membership.
type Event struct {
	Type   EventType
	Member Member // as it is after the change
}

// entry is the pool's copy of what memberlist knows about a member, kept
// because memberlist's own structures cannot be read without racing.
type entry struct {
	m        Member
	departed time.Time // when it became dead or left
	// picks are the times of this pool's own Picks of the member that its
	// announced Active may not include yet (see Pick).
	picks []time.Time
}

// departedRetention is how long dead and left members are remembered (for
// the members metric) after they departed.
const departedRetention = 5 * time.Minute

// Members returns the live members, self included, sorted by name.
func (p *Pool) Members() []Member {
	p.mu.Lock()
	out := make([]Member, 0, len(p.members))
	for _, e := range p.members {
		if e.m.State == StateAlive {
			out = append(out, e.m)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Member returns the member called name, live or recently departed.
func (p *Pool) Member(name string) (Member, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.members[name]
	if !ok {
		return Member{}, false
	}
	return e.m, true
}

// Self returns this member as the pool sees it: its gossip address and the
// metadata last announced.
func (p *Pool) Self() Member {
	m, _ := p.Member(p.cfg.Name)
	return m
}

// pruneDeparted forgets members that departed long ago.
func (p *Pool) pruneDeparted(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, e := range p.members {
		if e.m.State != StateAlive && now.Sub(e.departed) > departedRetention {
			delete(p.members, name)
			delete(p.badMeta, name)
		}
	}
}

// delegate receives memberlist's callbacks. memberlist calls the event
// methods with its node lock held: they must not block and must not call
// back into memberlist (hashicorp/memberlist#23, #237).
type delegate struct{ p *Pool }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

// NodeMeta returns the metadata announce prepared. It always fits: memberlist
// panics otherwise.
func (d *delegate) NodeMeta(limit int) []byte {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	if len(d.p.meta) > limit {
		return nil
	}
	return slices.Clone(d.p.meta)
}

// NotifyMsg receives Drain requests and acknowledgements.
func (d *delegate) NotifyMsg(b []byte) { d.p.handleMsg(slices.Clone(b)) }

// GetBroadcasts has nothing to add to gossip.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no state beyond the node metadata.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState has nothing to merge.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin records a member that joined or came back.
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.p.observe(EventJoin, n) }

// NotifyUpdate records a member's new metadata.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.p.observe(EventUpdate, n) }

// NotifyLeave records a member that left or died. memberlist's Node.State
// says alive here whatever happened (nodeState's own State field shadows
// it), so the member's last metadata tells: Leave announces Leaving first.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.p.observe(EventDead, n) }

// observe applies one memberlist event to the member table and publishes
// it. It runs under memberlist's node lock.
func (p *Pool) observe(typ EventType, n *memberlist.Node) {
	now := time.Now()
	w, err := decodeMeta(n.Meta)
	meta := w.Meta
	if typ == EventDead && (w.Leaving || n.State == memberlist.StateLeft) {
		typ = EventLeave
	}
	mem := Member{
		Name:  n.Name,
		Addr:  net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		State: StateAlive,
	}
	switch typ {
	case EventLeave:
		mem.State = StateLeft
	case EventDead:
		mem.State = StateDead
	}

	p.mu.Lock()
	e := p.members[n.Name]
	if e == nil {
		e = &entry{}
		p.members[n.Name] = e
	}
	if err != nil {
		// A member of another version or program: keep it visible but
		// unpickable (its Role is empty).
		meta = Meta{}
		if !p.badMeta[n.Name] {
			p.badMeta[n.Name] = true
			p.log.Warn("pool member metadata undecodable", "member", n.Name, callrec.LogKeyErr, err)
		}
	} else {
		delete(p.badMeta, n.Name)
	}
	mem.Meta = meta
	// A repeated announcement (see refreshLoop) changes nothing visible:
	// no event for it.
	quiet := typ == EventUpdate && e.m.State == StateAlive && e.m.Meta.equal(meta)
	e.m = mem
	if mem.State != StateAlive {
		e.departed = now
		e.picks = nil
	} else {
		// The announced Active includes our picks made before it was
		// announced. Clocks differ between hosts: never trust a stamp
		// later than now.
		cutoff := now
		if w.At != 0 {
			if at := time.Unix(0, w.At); at.Before(cutoff) {
				cutoff = at
			}
		}
		e.picks = slices.DeleteFunc(e.picks, func(t time.Time) bool { return t.Before(cutoff) })
	}
	ev := Event{Type: typ, Member: mem}
	if !p.closed && !quiet {
		for s := range p.subs {
			s.push(ev)
		}
	}
	p.mu.Unlock()
	if !quiet {
		p.met.events.WithLabelValues(string(typ)).Inc()
	}
}
