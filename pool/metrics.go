package pool

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pool's Prometheus metrics. Without a Registerer they are
// kept but not exported.
type metrics struct {
	reg        prometheus.Registerer
	registered []prometheus.Collector

	events         *prometheus.CounterVec
	drains         *prometheus.CounterVec
	announceErrors prometheus.Counter
	dropped        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, p *Pool) (*metrics, error) {
	m := &metrics{
		reg:            reg,
		events:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_pool_events_total", Help: "Membership changes seen, by type (join, update, leave, dead)."}, []string{"type"}),
		drains:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_pool_drain_requests_total", Help: "Drain requests this member sent, by result (acknowledged, timeout)."}, []string{"result"}),
		announceErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_pool_meta_announce_errors_total", Help: "Local metadata that could not be announced (invalid or too large)."}),
		dropped:        prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_pool_subscriber_events_dropped_total", Help: "Membership events dropped because a subscriber fell too far behind."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.drains, m.announceErrors, m.dropped, &membersCollector{p: p}} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, err
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// unregister removes the metrics, so a later Join in the same process can
// register its own.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

var membersDesc = prometheus.NewDesc("callrec_pool_members",
	"Pool members as this member sees them, by role and state (alive, dead, left; departed members are counted for 5 minutes).",
	[]string{"role", "state"}, nil)

// membersCollector counts the member table at scrape time.
type membersCollector struct{ p *Pool }

func (c *membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- membersDesc }

func (c *membersCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		role  Role
		state State
	}
	counts := make(map[key]int)
	for _, r := range []Role{RoleMediaAdapter, RoleRecorder, RoleLB, RoleConsolidation, RoleCLI} {
		for _, s := range []State{StateAlive, StateDead, StateLeft} {
			counts[key{r, s}] = 0
		}
	}
	c.p.mu.Lock()
	for _, e := range c.p.members {
		r := e.m.Meta.Role
		if !r.Valid() {
			r = "unknown"
		}
		counts[key{r, e.m.State}]++
	}
	c.p.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), string(k.role), string(k.state))
	}
}
