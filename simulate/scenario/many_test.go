package scenario_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"callrec"
	"callrec/simulate"
	"callrec/simulate/scenario"
)

// TestPlayAllConcurrently: 12 runs with concurrency 12 have every call
// live at once, each with agents of its own; every run is reported once.
func TestPlayAllConcurrently(t *testing.T) {
	var (
		mu            sync.Mutex
		live, maxLive int
		agentsOnCall  = map[string]map[string]bool{} // agent → tasks
	)
	sink := &collector{onEvent: func(ev callrec.CTIEvent) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case callrec.EventTaskCreated:
			live++
			maxLive = max(maxLive, live)
		case callrec.EventTaskCompleted, callrec.EventTaskCanceled:
			live--
		}
		if ev.WorkerName != "" {
			if agentsOnCall[ev.WorkerName] == nil {
				agentsOnCall[ev.WorkerName] = map[string]bool{}
			}
			agentsOnCall[ev.WorkerName][ev.TaskSID] = true
		}
	}}
	var results []scenario.Result
	failed := scenario.PlayAll(context.Background(), []scenario.Scenario{scenario.Answered, scenario.WarmTransfer}, 6, 12,
		scenario.Env{Sink: sink, Account: testAccount, Talk: 500 * time.Millisecond, Step: time.Millisecond, Seed: 9},
		func(r scenario.Result) { results = append(results, r) })
	if failed != 0 {
		t.Errorf("%d runs failed", failed)
	}
	if len(results) != 12 {
		t.Fatalf("%d runs reported, want 12", len(results))
	}
	seen := map[int]bool{}
	for _, r := range results {
		if seen[r.N] || r.N < 1 || r.N > 12 || !r.OK || r.Err != nil || r.Call == nil {
			t.Errorf("run %+v", r)
		}
		seen[r.N] = true
		if want := []scenario.Scenario{scenario.Answered, scenario.WarmTransfer}[(r.N-1)%2]; r.Scenario != want {
			t.Errorf("run %d played %s, want %s", r.N, r.Scenario, want)
		}
		if r.Call != nil && r.Call.Seed != int64(9+r.N-1) {
			t.Errorf("run %d: seed %d", r.N, r.Call.Seed)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if maxLive < 10 {
		t.Errorf("at most %d calls live at once, want 10 or more", maxLive)
	}
	for agent, tasks := range agentsOnCall {
		if !strings.HasPrefix(agent, "sim") {
			t.Errorf("agent %s without its slot prefix", agent)
		}
		if len(tasks) > 1 {
			// Slots play one run at a time: an agent has one task at a
			// time, here exactly one since every slot plays one run.
			t.Errorf("agent %s on %d calls", agent, len(tasks))
		}
	}
}

// TestPlayAllChecksStreamOrders: with a Twilio stand-in, a run is OK only
// when the recorder made the stream requests expected: with no recorder,
// an answered call is a mismatch and an abandoned one is fine.
func TestPlayAllChecksStreamOrders(t *testing.T) {
	tw := simulate.NewTwilio(testAccount, "token", simulate.Config{URL: "ws://unused"})
	t.Cleanup(tw.Close)
	byScenario := map[scenario.Scenario]scenario.Result{}
	failed := scenario.PlayAll(context.Background(), []scenario.Scenario{scenario.Answered, scenario.AbandonedInQueue}, 1, 2,
		scenario.Env{Sink: &collector{}, Twilio: tw, Account: testAccount, Talk: 20 * time.Millisecond, Step: time.Millisecond, Settle: 50 * time.Millisecond},
		func(r scenario.Result) { byScenario[r.Scenario] = r })
	if failed != 1 {
		t.Errorf("%d runs failed, want 1 (the answered call nobody recorded)", failed)
	}
	if r := byScenario[scenario.Answered]; r.OK || r.Starts != 0 || r.WantStarts != 1 || r.WantStops != 1 || r.Copies != 1 {
		t.Errorf("answered, unrecorded: %+v", r)
	}
	if r := byScenario[scenario.AbandonedInQueue]; !r.OK || r.WantStarts != 0 {
		t.Errorf("abandoned: %+v", r)
	}
}

// TestPlayAllStopsWithContext: runs not started when ctx ends count as
// failed.
func TestPlayAllStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	failed := scenario.PlayAll(ctx, []scenario.Scenario{scenario.Answered}, 5, 1,
		scenario.Env{Sink: &collector{}, Account: testAccount, Talk: time.Millisecond, Step: time.Millisecond},
		func(scenario.Result) { n++ })
	if failed != 5 || n > 1 {
		t.Errorf("%d failed, %d reported; want 5 failed, at most 1 reported", failed, n)
	}
}
