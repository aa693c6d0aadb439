package tracker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/twilio"
)

// HoldConfig sets the long-hold alarm. TaskRouter sends no hold events, so
// hold is read by polling each active call's conference participants (one
// Twilio API request per active call per poll): it is off unless LongHold
// is set.
type HoldConfig struct {
	LongHold time.Duration
	Every    time.Duration // poll interval, default 30 s
}

// Participants lists a conference's participants (*twilio.REST).
type Participants interface {
	Participants(ctx context.Context, conferenceSID string) ([]twilio.Participant, error)
}

// holdWatch keeps when each contact's customer went on hold.
type holdWatch struct {
	cfg     HoldConfig
	since   map[string]time.Time // task SID → hold start (as first seen)
	raised  map[string]bool
	onHold  prometheus.Gauge
	alarms  prometheus.Counter
	pollErr prometheus.Counter
}

func newHoldWatch(cfg HoldConfig, reg prometheus.Registerer) *holdWatch {
	if cfg.Every <= 0 {
		cfg.Every = 30 * time.Second
	}
	h := &holdWatch{cfg: cfg, since: map[string]time.Time{}, raised: map[string]bool{},
		onHold:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "callrec_calls_on_hold", Help: "Active calls whose customer is on hold (polled)."}),
		alarms:  prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_long_hold_alarms_total", Help: "Long-hold alarms raised."}),
		pollErr: prometheus.NewCounter(prometheus.CounterOpts{Name: "callrec_hold_poll_errors_total", Help: "Conference polls for hold state that failed."})}
	if reg != nil {
		reg.MustRegister(h.onHold, h.alarms, h.pollErr)
	}
	return h
}

// RunHoldWatch polls hold state until ctx is done (does nothing when the
// long-hold alarm is off).
func (s *Service) RunHoldWatch(ctx context.Context, api Participants) error {
	if s.holds.cfg.LongHold <= 0 {
		return nil
	}
	t := time.NewTicker(s.holds.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.CheckHolds(ctx, api, now)
		}
	}
}

// CheckHolds polls the conference of every active contact, notes when its
// customer went on hold, raises the long-hold alarm once per hold longer
// than the threshold, and returns how many customers are on hold and how
// many of those for too long.
func (s *Service) CheckHolds(ctx context.Context, api Participants, now time.Time) (onHold, long int) {
	s.mu.Lock()
	contacts := s.state.Contacts()
	s.mu.Unlock()
	h := s.holds
	seen := map[string]bool{}
	for _, c := range contacts {
		if c.Status != callrec.ContactActive || c.ConferenceSID == "" {
			continue
		}
		ps, err := api.Participants(ctx, c.ConferenceSID)
		if err != nil {
			h.pollErr.Inc()
			s.log.Warn("poll hold state", "task_sid", c.TaskSID, callrec.LogKeyErr, err)
			continue
		}
		customer, ok := twilio.CustomerLeg(ps, agentLegs(c)...)
		held := false
		for _, p := range ps {
			if ok && p.CallSID == customer {
				held = p.Hold
			}
		}
		if !held {
			delete(h.since, c.TaskSID)
			delete(h.raised, c.TaskSID)
			continue
		}
		seen[c.TaskSID] = true
		onHold++
		began, known := h.since[c.TaskSID]
		if !known {
			h.since[c.TaskSID], began = now, now
		}
		if now.Sub(began) < h.cfg.LongHold {
			continue
		}
		long++
		if !h.raised[c.TaskSID] {
			h.raised[c.TaskSID] = true
			h.alarms.Inc()
			s.log.Error("ALARM: long hold", "task_sid", c.TaskSID, callrec.LogKeyCallSID, customer,
				"on_hold_since", began, "threshold", h.cfg.LongHold)
		}
	}
	for sid := range h.since { // contacts that ended while on hold
		if !seen[sid] {
			delete(h.since, sid)
			delete(h.raised, sid)
		}
	}
	h.onHold.Set(float64(onHold))
	return onHold, long
}

func agentLegs(c callrec.Contact) []string {
	var out []string
	for label, call := range c.Participants {
		if label != "customer" {
			out = append(out, call)
		}
	}
	return out
}
