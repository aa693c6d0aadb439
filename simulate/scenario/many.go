package scenario

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"callrec"
	"callrec/internal/twiliotest"
	"callrec/simulate"
)

// Result is one run of PlayAll.
type Result struct {
	// N numbers the run from 1, in the order runs were started.
	N        int
	Scenario Scenario
	// Call is the played call (nil if Play refused to start), Err what
	// went wrong playing it.
	Call *Call
	Err  error
	// Starts and Stops count the successful Start and Stop Stream requests
	// on the customer's call, WantStarts and WantStops what a correct
	// recorder makes (Expect.Orders for the copies seen), and Copies the
	// streams per decision (2 with dual-stream capture). All zero without
	// env.Twilio.
	Starts, Stops, WantStarts, WantStops, Copies int
	// OK says the call played and, with env.Twilio, the stream requests
	// are as expected.
	OK bool
}

// Orders returns the Start and Stop Stream requests a correct recorder
// makes for x when it starts copies streams per decision (2 with
// dual-stream capture, else 1): every stream decision times copies, and
// one replacement per stream that fails (only the failed copy is
// replaced).
func (x Expect) Orders(copies int) (starts, stops int) {
	copies = max(copies, 1)
	return (x.Starts-x.StreamErrors)*copies + x.StreamErrors, x.Stops * copies
}

// StreamOrders counts the Start and Stop Stream requests on the call's
// customer leg that tw answered with 200, and the copies per decision its
// streams carry (their callrec.ParamCopies parameter; 1 without dual
// streams). It counts this call only, so calls played at the same time on
// one tw do not mix.
func (c *Call) StreamOrders(tw *simulate.Twilio) (starts, stops, copies int) {
	leg := "/Calls/" + c.CustomerCall + "/"
	for _, r := range tw.Requests() {
		if r.Status != http.StatusOK || c.CustomerCall == "" || !strings.Contains(r.Path, leg) {
			continue
		}
		switch r.Op {
		case twiliotest.OpCreateStream:
			starts++
		case twiliotest.OpStopStream:
			stops++
		}
	}
	copies = 1
	for _, s := range tw.Streams() {
		if s.CallSID != c.CustomerCall {
			continue
		}
		if n, err := strconv.Atoi(s.Params[callrec.ParamCopies]); err == nil && n > copies && n <= callrec.MaxCopies {
			copies = n
		}
	}
	return starts, stops, copies
}

// PlayAll plays each scenario of list repeat times (runs in list order,
// repeat by repeat), up to concurrency runs at once (default 1: one after
// the other), and hands each run's Result to report as it finishes, one at
// a time. With concurrency above 1 several Flex calls are live at once, as
// in a contact center: each concurrent slot i (from 1) has its own agents,
// "sim<i>-" put in front of env.AgentPrefix, so that no agent is on two
// calls at once; a non-zero env.Seed is varied per run (Seed + N - 1). It
// returns the number of runs that were not OK, runs never played because
// ctx ended included.
func PlayAll(ctx context.Context, list []Scenario, repeat, concurrency int, env Env, report func(Result)) int {
	type job struct {
		n  int
		sc Scenario
	}
	var jobs []job
	for range repeat {
		for _, sc := range list {
			jobs = append(jobs, job{len(jobs) + 1, sc})
		}
	}
	concurrency = min(max(concurrency, 1), max(len(jobs), 1))
	var (
		mu     sync.Mutex
		failed int
		wg     sync.WaitGroup
	)
	queue := make(chan job)
	for slot := 1; slot <= concurrency; slot++ {
		e := env
		if concurrency > 1 {
			e.AgentPrefix = fmt.Sprintf("sim%d-", slot) + env.AgentPrefix
		}
		wg.Go(func() {
			for j := range queue {
				e := e
				if env.Seed != 0 {
					e.Seed = env.Seed + int64(j.n) - 1
				}
				r := playOne(ctx, j.n, j.sc, e)
				mu.Lock()
				if !r.OK {
					failed++
				}
				if report != nil {
					report(r)
				}
				mu.Unlock()
			}
		})
	}
	played := 0
feed:
	for _, j := range jobs {
		select {
		case queue <- j:
			played++
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	return failed + len(jobs) - played
}

// playOne plays one run and checks the stream requests it caused.
func playOne(ctx context.Context, n int, sc Scenario, env Env) Result {
	r := Result{N: n, Scenario: sc}
	r.Call, r.Err = Play(ctx, sc, env)
	if r.Err != nil {
		return r
	}
	r.OK = true
	if env.Twilio != nil {
		r.Starts, r.Stops, r.Copies = r.Call.StreamOrders(env.Twilio)
		r.WantStarts, r.WantStops = r.Call.Expect.Orders(r.Copies)
		r.OK = r.Starts == r.WantStarts && r.Stops == r.WantStops
	}
	return r
}
