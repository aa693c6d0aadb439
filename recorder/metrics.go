package recorder

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are a recorder node's Prometheus metrics.
type Metrics struct{ m *metrics }

type metrics struct {
	node          *Node
	started       prometheus.Counter
	stopped       *prometheus.CounterVec
	repaired      prometheus.Counter
	frames        prometheus.Counter
	bytesWritten  prometheus.Counter
	patched       prometheus.Counter
	streamErrors  *prometheus.CounterVec
	flushSeconds  prometheus.Histogram
	fsyncSeconds  prometheus.Histogram
	copiesJoined  prometheus.Counter
	copiesAligned *prometheus.CounterVec
}

// NewMetrics registers a node's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &metrics{
		started:       prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_recordings_started_total", Help: "Recordings started (INUMs assigned)."}),
		stopped:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_recorder_recordings_stopped_total", Help: "Recordings finished, by final state."}, []string{"state"}),
		repaired:      prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_recordings_repaired_total", Help: "Recordings found open after a crash and repaired."}),
		frames:        prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_frames_written_total", Help: "Audio frames written and synced."}),
		bytesWritten:  prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_audio_bytes_written_total", Help: "Audio bytes written to recordings."}),
		patched:       prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_frames_patched_total", Help: "Late frames written into their place in the file."}),
		streamErrors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_stream_errors_total", Help: "Bad input on Media Streams, by kind."}, []string{"kind"}),
		flushSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callrec_recorder_flush_seconds", Help: "Time to flush every active recording once.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		copiesJoined:  prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_recorder_pair_copies_total", Help: "Streams of dual-stream pairs merged into a recording another copy started."}),
		copiesAligned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_recorder_pair_alignments_total", Help: "Pair copies placed on a merged recording, by how: origin, content (audio matched) or clock."}, []string{"alignment"}),
		fsyncSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "callrec_recorder_fsync_seconds", Help: "Time of one recording file fsync.", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}),
	}
	if reg != nil {
		active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callrec_recorder_recordings_active", Help: "Recordings being written."}, func() float64 {
			if m.node == nil {
				return 0
			}
			return float64(m.node.Active())
		})
		reg.MustRegister(m.started, m.stopped, m.repaired, m.frames, m.bytesWritten, m.patched, m.streamErrors, m.flushSeconds, m.fsyncSeconds, m.copiesJoined, m.copiesAligned, active)
	}
	return &Metrics{m: m}
}
