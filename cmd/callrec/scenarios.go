package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"callrec/eventadapter/kinesis"
	"callrec/simulate"
	"callrec/simulate/scenario"
)

// scenarioFlags are the flags of `callrec simulate --scenario`.
type scenarioFlags struct {
	names     string
	eventsURL string
	apiAddr   string
	account   string
	talk      time.Duration
	repeat    int
	parallel  int
	kinesis   kinesis.Config
}

func (f *scenarioFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.names, "scenario", "", "play whole Flex calls instead of bare streams: comma-separated scenarios or all ("+strings.Join(scenarioNames(), ", ")+")")
	fs.StringVar(&f.eventsURL, "events-url", "http://127.0.0.1:8080/twilio/events", "with --scenario: the Event Streams webhook to post CloudEvents to")
	fs.StringVar(&f.apiAddr, "api-addr", "127.0.0.1:8089", "with --scenario: where to serve the simulated Twilio REST API (run callrec with --twilio-api-url http://<this>)")
	fs.StringVar(&f.account, "account-sid", simulate.DefaultAccountSID, "with --scenario: the account SID (callrec's --twilio-account-sid)")
	fs.DurationVar(&f.talk, "talk", 3*time.Second, "with --scenario: how long agents talk")
	fs.IntVar(&f.repeat, "repeat", 1, "with --scenario: play each scenario this many times (runs in all)")
	fs.IntVar(&f.parallel, "concurrency", 1, "with --scenario: play this many runs at once (each concurrent slot has agents of its own, sim<slot>-alice…), so that many Flex calls are live together")
	fs.StringVar(&f.kinesis.Stream, "events-kinesis-stream", "", "with --scenario: put the CloudEvents into this Kinesis stream instead of the webhook")
	fs.StringVar(&f.kinesis.Endpoint, "kinesis-endpoint", "", "with --events-kinesis-stream: endpoint override (kinesis-local)")
	fs.StringVar(&f.kinesis.Region, "kinesis-region", "us-east-1", "with --events-kinesis-stream: AWS region")
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenario.All() {
		out = append(out, string(s))
	}
	return out
}

// runScenarios serves the simulated Twilio REST API and plays the
// scenarios, --concurrency runs at once (one after the other by default),
// reporting per run what it expected and what the Twilio API saw on its
// call. With callrec's --dual-streams each decision is two streams; the
// expectation follows the copies the streams carry.
func runScenarios(ctx context.Context, f scenarioFlags, media simulate.Config, asJSON bool, stdout io.Writer, log *slog.Logger) error {
	if media.AuthToken == "" {
		return fmt.Errorf("--scenario needs --auth-token: events, API calls and streams are signed with it")
	}
	if f.repeat < 0 || f.parallel < 1 {
		return fmt.Errorf("--repeat must not be negative and --concurrency must be at least 1")
	}
	var list []scenario.Scenario
	if f.names == "all" {
		list = scenario.All()
	} else {
		for _, n := range strings.Split(f.names, ",") {
			sc := scenario.Scenario(strings.TrimSpace(n))
			if !slices.Contains(scenario.All(), sc) {
				return fmt.Errorf("--scenario %q: want all or some of %s", sc, strings.Join(scenarioNames(), ", "))
			}
			list = append(list, sc)
		}
	}
	media.Duration = 10 * time.Minute
	tw := simulate.NewTwilio(f.account, media.AuthToken, media)
	defer tw.Close()
	ln, err := net.Listen("tcp", f.apiAddr)
	if err != nil {
		return fmt.Errorf("listen for the simulated Twilio API: %w", err)
	}
	srv := &http.Server{Handler: tw, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("simulated Twilio REST API listening", "url", "http://"+ln.Addr().String())
	var sink scenario.Sink = &scenario.WebhookSink{URL: f.eventsURL, AuthToken: media.AuthToken}
	if f.kinesis.Stream != "" {
		if sink, err = kinesis.NewPublisher(ctx, f.kinesis); err != nil {
			return err
		}
	}
	env := scenario.Env{Sink: sink, Twilio: tw, Account: f.account, Talk: f.talk}
	var out scenarioOutput
	failed := scenario.PlayAll(ctx, list, f.repeat, f.parallel, env, func(r scenario.Result) {
		if asJSON {
			out.Runs = append(out.Runs, runOutput(r))
			return
		}
		if r.Err != nil {
			fmt.Fprintf(stdout, "%-22s FAILED: %v\n", r.Scenario, r.Err)
			return
		}
		copies := ""
		if r.Copies > 1 {
			copies = fmt.Sprintf(" (%d streams per decision)", r.Copies)
		}
		fmt.Fprintf(stdout, "%-22s task %s call %s: Start Stream %d (want %d), Stop Stream %d (want %d)%s %s\n",
			r.Scenario, r.Call.TaskSID, r.Call.CustomerCall, r.Starts, r.WantStarts, r.Stops, r.WantStops, copies,
			map[bool]string{true: "ok", false: "MISMATCH"}[r.OK])
	})
	if asJSON {
		tw.Close() // every stream is over: its result is in
		for _, res := range tw.Results() {
			out.Streams = append(out.Streams, streamOutput{CallResult: res, Err: errText(res.Err)})
		}
		slices.SortFunc(out.Streams, func(a, b streamOutput) int {
			return cmp.Or(strings.Compare(a.CallSID, b.CallSID), a.Started.Compare(b.Started), strings.Compare(a.StreamSID, b.StreamSID))
		})
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d scenario runs failed", failed)
	}
	return nil
}

// scenarioOutput is what `simulate --scenario … --json` prints: every run,
// in the order they finished, and every Media Stream the simulated Twilio
// opened, by call.
type scenarioOutput struct {
	Runs    []scenarioRunOutput
	Streams []streamOutput
}

// scenarioRunOutput is one scenario run.
type scenarioRunOutput struct {
	N        int
	Scenario scenario.Scenario
	Seed     int64
	TaskSID  string
	CallSID  string // the customer's call
	// Starts and Stops are the successful Start and Stop Stream requests on
	// the call, WantStarts and WantStops what a correct recorder makes,
	// Copies the streams per decision.
	Starts, Stops, WantStarts, WantStops, Copies int
	OK                                           bool
	Error                                        string `json:",omitempty"`
}

// streamOutput is one Media Stream's result, its error as text (absent
// when it had none).
type streamOutput struct {
	simulate.CallResult
	Err string `json:",omitempty"`
}

func runOutput(r scenario.Result) scenarioRunOutput {
	o := scenarioRunOutput{N: r.N, Scenario: r.Scenario, Starts: r.Starts, Stops: r.Stops, WantStarts: r.WantStarts,
		WantStops: r.WantStops, Copies: r.Copies, OK: r.OK, Error: errText(r.Err)}
	if r.Call != nil {
		o.Seed, o.TaskSID, o.CallSID = r.Call.Seed, r.Call.TaskSID, r.Call.CustomerCall
	}
	if !r.OK && o.Error == "" {
		o.Error = fmt.Sprintf("Start Stream %d (want %d), Stop Stream %d (want %d)", r.Starts, r.WantStarts, r.Stops, r.WantStops)
	}
	return o
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
