package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	kinesis   kinesis.Config
}

func (f *scenarioFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.names, "scenario", "", "play whole Flex calls instead of bare streams: comma-separated scenarios or all ("+strings.Join(scenarioNames(), ", ")+")")
	fs.StringVar(&f.eventsURL, "events-url", "http://127.0.0.1:8080/twilio/events", "with --scenario: the Event Streams webhook to post CloudEvents to")
	fs.StringVar(&f.apiAddr, "api-addr", "127.0.0.1:8089", "with --scenario: where to serve the simulated Twilio REST API (run callrec with --twilio-api-url http://<this>)")
	fs.StringVar(&f.account, "account-sid", simulate.DefaultAccountSID, "with --scenario: the account SID (callrec's --twilio-account-sid)")
	fs.DurationVar(&f.talk, "talk", 3*time.Second, "with --scenario: how long agents talk")
	fs.IntVar(&f.repeat, "repeat", 1, "with --scenario: play each scenario this many times")
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
// scenarios one after the other, reporting what each expected and what the
// Twilio API saw.
func runScenarios(ctx context.Context, f scenarioFlags, media simulate.Config, stdout io.Writer, log *slog.Logger) error {
	if media.AuthToken == "" {
		return fmt.Errorf("--scenario needs --auth-token: events, API calls and streams are signed with it")
	}
	var list []scenario.Scenario
	if f.names == "all" {
		list = scenario.All()
	} else {
		for _, n := range strings.Split(f.names, ",") {
			list = append(list, scenario.Scenario(strings.TrimSpace(n)))
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
	failed := 0
	for i := 0; i < f.repeat; i++ {
		for _, sc := range list {
			before := len(tw.Requests())
			c, err := scenario.Play(ctx, sc, scenario.Env{Sink: sink, Twilio: tw, Account: f.account, Talk: f.talk})
			if err != nil {
				failed++
				fmt.Fprintf(stdout, "%-22s FAILED: %v\n", sc, err)
				continue
			}
			var starts, stops int
			for _, r := range tw.Requests()[before:] {
				if r.Status == http.StatusOK {
					switch r.Op {
					case "create_stream":
						starts++
					case "stop_stream":
						stops++
					}
				}
			}
			ok := starts == c.Expect.Starts && stops == c.Expect.Stops
			if !ok {
				failed++
			}
			fmt.Fprintf(stdout, "%-22s task %s call %s: Start Stream %d (want %d), Stop Stream %d (want %d) %s\n",
				sc, c.TaskSID, c.CustomerCall, starts, c.Expect.Starts, stops, c.Expect.Stops, map[bool]string{true: "ok", false: "MISMATCH"}[ok])
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d scenario runs failed", failed)
	}
	return nil
}
