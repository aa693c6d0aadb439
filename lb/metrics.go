package lb

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of one attempt to hand an upgrade to a backend (label "outcome").
const (
	outcomeSwitched = "switched" // 101: the stream is proxied
	outcomeRefused  = "refused"  // the adapter answered below 500 (bad signature…): passed to the client
	outcomeFailed   = "failed"   // connect error, timeout or 5xx: the next backend is tried
	outcomeCanceled = "canceled" // the client left or the lb shut down during the attempt
)

type metrics struct {
	upgrades    *prometheus.CounterVec // backend, outcome
	active      *prometheus.GaugeVec   // backend
	picks       *prometheus.CounterVec // backend
	retries     prometheus.Counter
	unavailable prometheus.Counter
	rejected    *prometheus.CounterVec // reason
}

func newMetrics(reg prometheus.Registerer, l *LB) *metrics {
	m := &metrics{
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_lb_upgrades_total",
			Help: "Attempts to hand a Media Streams upgrade to an adapter, by backend and outcome (switched, refused, failed, canceled)."},
			[]string{"backend", "outcome"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "callrec_lb_connections_active",
			Help: "Proxied WebSocket connections open, by backend."}, []string{"backend"}),
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_lb_picks_total",
			Help: "Backends chosen for upgrades (least loaded, or by a dual-stream pair's ranking), by backend."}, []string{"backend"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_lb_retries_total",
			Help: "Upgrades sent to another backend after the first choice failed to connect or answered 5xx."}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_lb_unavailable_total",
			Help: "Upgrades answered 503 because no backend could take them."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_lb_requests_rejected_total",
			Help: "Requests refused by the lb itself, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		total := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_lb_connections_proxied",
			Help: "Proxied WebSocket connections open, all backends."}, func() float64 { return float64(l.Active()) })
		peers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_lb_peer_factor",
			Help: "Estimated number of lbs feeding the pool (pool streams / this lb's), used to weigh this lb's unreported connections."},
			l.peerEstimate)
		reg.MustRegister(m.upgrades, m.active, m.picks, m.retries, m.unavailable, m.rejected, total, peers)
	}
	return m
}

// forget drops the series of a backend that left the view and has no
// connection through this lb, so adapter churn does not grow them forever.
func (m *metrics) forget(name string) {
	m.active.DeleteLabelValues(name)
	m.picks.DeleteLabelValues(name)
	m.upgrades.DeletePartialMatch(prometheus.Labels{"backend": name})
}
