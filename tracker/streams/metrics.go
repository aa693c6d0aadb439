package streams

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	orders     *prometheus.CounterVec
	retries    *prometheus.CounterVec
	apiErrors  *prometheus.CounterVec
	duplicates prometheus.Counter
	circuit    prometheus.Gauge
	latency    prometheus.Histogram
	restarts   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		orders:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_stream_orders_total", Help: "Stream orders finished, by kind and outcome."}, []string{"kind", "outcome"}),
		retries:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_stream_order_retries_total", Help: "Stream order attempts that failed and will be retried."}, []string{"kind"}),
		apiErrors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_twilio_api_errors_total", Help: "Twilio API errors, by operation and HTTP status."}, []string{"op", "status"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_stream_orders_duplicate_total", Help: "Stream orders submitted again for a decision already taken."}),
		circuit:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_twilio_circuit_open", Help: "1 while Twilio requests are suspended after repeated failures."}),
		restarts:   prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_stream_restarts_total", Help: "Replacement streams ordered after Twilio reported a stream dead mid-call."}),
		latency:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callrec_cti_to_start_seconds", Help: "From the CTI event's arrival to the Start Stream request.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.retries, m.apiErrors, m.duplicates, m.circuit, m.latency, m.restarts)
	}
	return m
}
