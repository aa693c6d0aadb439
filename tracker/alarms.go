package tracker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
)

// AlarmConfig sets the long-call alarm (Verint's default: 120 minutes).
type AlarmConfig struct {
	LongCall time.Duration
	Every    time.Duration // how often contacts are checked
}

// alarms raises the long-call alarm once per contact, as a log event and a
// metric. (A long-hold alarm needs hold state, which TaskRouter events do
// not carry: it comes with polling the conference participants.)
type alarms struct {
	cfg     AlarmConfig
	raised  map[string]bool
	total   prometheus.Counter
	current prometheus.Gauge
}

func newAlarms(cfg AlarmConfig, reg prometheus.Registerer) *alarms {
	if cfg.LongCall <= 0 {
		cfg.LongCall = 120 * time.Minute
	}
	if cfg.Every <= 0 {
		cfg.Every = 30 * time.Second
	}
	a := &alarms{cfg: cfg, raised: map[string]bool{},
		total:   prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_long_call_alarms_total", Help: "Long-call alarms raised."}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_long_calls", Help: "Active calls longer than the long-call threshold."})}
	if reg != nil {
		reg.MustRegister(a.total, a.current)
	}
	return a
}

// RunAlarms checks active contacts every AlarmConfig.Every until ctx is done.
func (s *Service) RunAlarms(ctx context.Context) error {
	t := time.NewTicker(s.alarms.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.CheckAlarms(now)
		}
	}
}

// CheckAlarms raises the long-call alarm for contacts active longer than
// the threshold at now, once each, and returns how many are over it.
func (s *Service) CheckAlarms(now time.Time) int {
	s.mu.Lock()
	contacts := s.state.Contacts()
	s.mu.Unlock()
	long := 0
	for _, c := range contacts {
		if c.Status != callrec.ContactActive {
			delete(s.alarms.raised, c.TaskSID)
			continue
		}
		began := time.Time{}
		for _, cn := range c.Connections {
			if !cn.AnsweredAt.IsZero() && (began.IsZero() || cn.AnsweredAt.Before(began)) {
				began = cn.AnsweredAt
			}
		}
		if began.IsZero() || now.Sub(began) < s.alarms.cfg.LongCall {
			continue
		}
		long++
		if !s.alarms.raised[c.TaskSID] {
			s.alarms.raised[c.TaskSID] = true
			s.alarms.total.Inc()
			s.log.Error("ALARM: long call", "task_sid", c.TaskSID, callrec.LogKeyCallSID, c.CustomerCall,
				"answered_at", began, "duration", now.Sub(began).Round(time.Second), "threshold", s.alarms.cfg.LongCall)
		}
	}
	s.alarms.current.Set(float64(long))
	return long
}
