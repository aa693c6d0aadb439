package mediaadapter

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	accepted    prometheus.Counter
	refused     *prometheus.CounterVec
	ended       *prometheus.CounterVec
	media       prometheus.Counter
	dropped     prometheus.Counter
	badMessages *prometheus.CounterVec
	// dual recording
	replicaFailures prometheus.Counter
	dualSingle      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		accepted:    prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_media_connections_accepted_total", Help: "Media Streams sockets accepted."}),
		refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_media_connections_refused_total", Help: "Media Streams upgrades refused, by reason."}, []string{"reason"}),
		ended:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_media_streams_ended_total", Help: "Media Streams ended, by reason."}, []string{"reason"}),
		media:       prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_media_frames_received_total", Help: "Media messages received."}),
		dropped:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_media_frames_dropped_total", Help: "Media frames dropped because the recorder was not acknowledging (each one is a gap in a recording)."}),
		badMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_media_bad_messages_total", Help: "Rejected Media Streams input, by kind."}, []string{"kind"}),
		replicaFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_media_replica_failures_total",
			Help: "Dual recording: replicas whose recording failed while the stream's other replica carried on (a recorder dying is a failover, not this)."}),
		dualSingle: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_media_dual_recording_single_total",
			Help: "Dual recording: streams recorded by one recorder only because no second recorder was available when they started."}),
	}
	if reg != nil {
		active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_media_streams_active", Help: "Open Media Streams sockets."},
			func() float64 { return float64(s.Active()) })
		reg.MustRegister(m.accepted, m.refused, m.ended, m.media, m.dropped, m.badMessages, m.replicaFailures, m.dualSingle, active)
	}
	return m
}
