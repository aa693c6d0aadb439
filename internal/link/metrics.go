package link

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of a process's link clients. One
// Metrics is shared by every Client of the process (ClientConfig.Metrics);
// a Client without one records nothing.
//
// Nothing here costs per frame. Acknowledgement latency is sampled: each
// stream times one record at a time, the last of a batch it sends, until
// the cumulative acknowledgement covering it arrives; then the next batch
// is timed. The gauges are computed when Prometheus scrapes.
type Metrics struct {
	ackSeconds    prometheus.Histogram
	reconnects    prometheus.Counter
	ackTimeouts   prometheus.Counter
	sentBytes     prometheus.Counter
	replayedBytes prometheus.Counter

	mu      sync.Mutex
	clients map[*Client]struct{} // those whose Run is running
}

// NewMetrics returns link metrics registered with reg (nil: kept, not
// exported). Call it once per process.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callrec_link_ack_seconds",
			Help:    "Time from sending a record to a recorder until the acknowledgement covering it arrives (sampled: one record in flight per stream).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_link_reconnects_total",
			Help: "Times a link to a recorder was down (connection lost or dial failed) and was retried after a backoff."}),
		ackTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_link_ack_timeouts_total",
			Help: "Link connections dropped because the recorder stopped acknowledging."}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_link_sent_bytes_total",
			Help: "Bytes written on links to recorders, replays included."}),
		replayedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_link_replayed_bytes_total",
			Help: "Bytes of records sent again after a reconnect because they had not been acknowledged."}),
		clients: map[*Client]struct{}{},
	}
	if reg != nil {
		retained := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_link_retained_bytes",
			Help: "Bytes of records held for replay until a recorder acknowledges them, all streams of all links."},
			m.retainedBytes)
		connections := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_link_connections",
			Help: "Links with a live connection to a recorder."},
			m.connections)
		reg.MustRegister(m.ackSeconds, m.reconnects, m.ackTimeouts, m.sentBytes, m.replayedBytes, retained, connections)
	}
	return m
}

func (m *Metrics) add(c *Client) {
	m.mu.Lock()
	m.clients[c] = struct{}{}
	m.mu.Unlock()
}

func (m *Metrics) remove(c *Client) {
	m.mu.Lock()
	delete(m.clients, c)
	m.mu.Unlock()
}

func (m *Metrics) each(f func(c *Client)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.clients {
		f(c)
	}
}

// retainedBytes sums the retention buffers of every stream. It reads the
// streams themselves, not ClientStats.RetainedBytes, which is brought up to
// date only when a stream is sent or acknowledged and so lags while the
// link is down, exactly when retention grows.
func (m *Metrics) retainedBytes() float64 {
	var n int
	m.each(func(c *Client) { n += c.retained() })
	return float64(n)
}

func (m *Metrics) connections() float64 {
	var n int
	m.each(func(c *Client) {
		if c.Connected() {
			n++
		}
	})
	return float64(n)
}

// observeAck records one sampled acknowledgement latency.
func (m *Metrics) observeAck(d time.Duration) { m.ackSeconds.Observe(d.Seconds()) }
