package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"callrec/simulate"
)

func runSimulateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", "Plays Twilio: opens concurrent, signed Media Streams with real speech audio in real time, then prints a summary.", stderr)
	var cfg simulate.Config
	var lf logFlags
	var insecureTLS, asJSON bool
	var params string
	var sc scenarioFlags
	sc.register(fs)
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8081/media", "Media Streams URL to connect to (ws:// or wss://)")
	fs.StringVar(&cfg.SignURL, "sign-url", "", "URL to sign, when it differs from --url (a proxy in between)")
	fs.StringVar(&cfg.AuthToken, "auth-token", "", "Twilio auth token to sign upgrades with (env TWILIO_AUTH_TOKEN; empty: unsigned)")
	fs.IntVar(&cfg.Calls, "calls", 1, "concurrent calls")
	fs.DurationVar(&cfg.Duration, "duration", 10e9, "audio per call")
	fs.DurationVar(&cfg.RampUp, "ramp-up", 0, "spread call starts over this long")
	fs.StringVar(&cfg.Tracks, "tracks", "both", "both or inbound")
	fs.Float64Var(&cfg.Drop, "drop", 0, "probability of dropping a frame in transit")
	fs.Float64Var(&cfg.Duplicate, "duplicate", 0, "probability of sending a frame twice")
	fs.Float64Var(&cfg.Reorder, "reorder", 0, "probability of swapping a frame with the next one")
	fs.DurationVar(&cfg.CutAfter, "cut-after", 0, "cut each socket (no stop, no close frame) after this much audio")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed for drop/duplicate/reorder")
	fs.StringVar(&params, "params", "", "extra custom parameters, name=value,name=value")
	fs.BoolVar(&insecureTLS, "insecure-tls", false, "do not verify the server certificate (wss:// to a self-signed test server)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON (with --scenario: every run and every Media Stream opened, with its call frame)")
	lf.register(fs)
	if err := parseFlags(fs, args, map[string]string{"auth-token": "TWILIO_AUTH_TOKEN"}); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg.Log = log
	if insecureTLS {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for on the command line, for test servers
	}
	if params != "" {
		cfg.Params = map[string]string{}
		for _, kv := range strings.Split(params, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--params: want name=value, got %q", kv)
			}
			cfg.Params[k] = v
		}
	}
	if sc.names != "" {
		return runScenarios(ctx, sc, cfg, asJSON, stdout, log)
	}
	sum, err := simulate.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else if err := sum.WriteText(stdout); err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d calls failed", sum.Failed, len(sum.Calls))
	}
	return nil
}
