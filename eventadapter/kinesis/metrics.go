package kinesis

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of callrec_kinesis_retries_total.
const (
	reasonThroughput = "throughput"       // ProvisionedThroughputExceededException
	reasonLimit      = "limit"            // LimitExceededException
	reasonExpired    = "expired_iterator" // ExpiredIteratorException
	reasonHandler    = "handler"          // the Handler returned an error
	reasonCheckpoint = "checkpoint"       // the CheckpointStore failed
	reasonAPI        = "api"              // any other Kinesis error
)

type metrics struct {
	behind  *prometheus.GaugeVec
	records prometheus.Counter
	retries *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them with reg (if not nil),
// reusing those already registered by an earlier Source.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "callrec_kinesis_millis_behind_latest",
			Help: "How far a shard's reader is behind the tip of the stream (GetRecords MillisBehindLatest).",
		}, []string{"shard"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callrec_kinesis_records_total",
			Help: "Kinesis records handled and checkpointed.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callrec_kinesis_retries_total",
			Help: "Kinesis reader retries by reason.",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.behind, err = register(reg, m.behind)
	if err != nil {
		return nil, err
	}
	if m.records, err = register(reg, m.records); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
