package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"callrec"
	"callrec/consolidation/ingest"
	"callrec/eventadapter"
	eabolt "callrec/eventadapter/bolt"
	"callrec/eventadapter/kinesis"
	"callrec/eventadapter/webhook"
	"callrec/internal/twilio"
	"callrec/tracker"
	trbolt "callrec/tracker/bolt"
	"callrec/tracker/streams"
)

// runTrackerCommand runs the tracker and Stream Manager alone: CTI events
// arrive on POST /api/events from eventadapter processes.
func runTrackerCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("tracker", "Runs the tracker: call state, recording rules, and the Stream Manager (Start/Stop Stream on Twilio). Event adapters post CTI events to /api/events.", stderr)
	var cfg ctiConfig
	var lf logFlags
	dataDir := fs.String("data-dir", "./data", "where the tracker's state is kept")
	httpAddr := fs.String("http-addr", "127.0.0.1:8084", "events API, stream status callbacks, metrics and health")
	token := fs.String("twilio-auth-token", "", "Twilio auth token (env TWILIO_AUTH_TOKEN)")
	mediaURL := fs.String("media-url", "", "the media tier's public wss:// URL that streams are sent to (required)")
	eventsToken := fs.String("events-token", "", "bearer token event adapters must present on /api/events")
	consURL := fs.String("consolidation-url", "", "consolidation's base URL: contacts are sent to its ingest API")
	ingestToken := fs.String("ingest-token", "", "bearer token for consolidation's ingest API")
	cfg.registerTracker(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, map[string]string{"twilio-auth-token": "TWILIO_AUTH_TOKEN", "twilio-account-sid": "TWILIO_ACCOUNT_SID"}); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if cfg.AccountSID == "" || *token == "" || *mediaURL == "" {
		return fmt.Errorf("the tracker needs --twilio-account-sid, --twilio-auth-token and --media-url")
	}
	if *eventsToken == "" {
		log.Warn("no --events-token: anyone who reaches " + *httpAddr + " can post CTI events")
	}
	if err := os.MkdirAll(filepath.Join(*dataDir, "tracker"), 0o750); err != nil {
		return err
	}
	store, err := trbolt.Open(filepath.Join(*dataDir, "tracker", "tracker.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	public := strings.TrimSuffix(cfg.PublicHTTPURL, "/")
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	rest, err := twilio.NewREST(twilio.RESTConfig{AccountSID: cfg.AccountSID, AuthToken: *token, BaseURL: cfg.APIURL})
	if err != nil {
		ln.Close()
		return err
	}
	reg := newRegistry()
	mgr := streams.New(cfg.streamsConfig(*mediaURL, public), rest, store, log, reg)
	svc, err := tracker.NewService(ctx, cfg.rules(), tracker.AlarmConfig{LongCall: cfg.LongCall}, tracker.HoldConfig{LongHold: cfg.LongHold}, mgr, store, log, reg)
	if err == nil {
		err = svc.SetRetention(cfg.retention())
	}
	if err != nil {
		ln.Close()
		return err
	}
	if *consURL != "" {
		if err := svc.SetContactSink(ctx, ingest.NewClient(*consURL, *ingestToken)); err != nil {
			// Contacts still go as events change them; these restored ones
			// go again with their next event or, once ended, with the
			// retirement sweep (which retires none consolidation has not
			// taken).
			log.Warn("consolidation did not take the restored contacts", callrec.LogKeyErr, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/events", tracker.EventsHandler(svc, *eventsToken, log))
	mux.Handle("POST /twilio/stream-status", statusCallbacks(public+"/twilio/stream-status", *token, mgr, log, reg))
	addOps(mux, reg, func() bool { return !mgr.CircuitOpen() })
	log.Info("tracker running", "http_addr", ln.Addr().String(), "media_url", *mediaURL, "dual_streams", cfg.DualStreams, "version", callrec.Version)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Run(runCtx) })
	wg.Go(func() { _ = svc.RunAlarms(runCtx) })
	wg.Go(func() { _ = svc.RunHoldWatch(runCtx, rest) })
	wg.Go(func() { _ = svc.RunRetention(runCtx) })
	return serveHTTP(ctx, ln, mux, log, func() {
		stop()
		wg.Wait()
	})
}

// runEventAdapterCommand runs the Event Streams adapter alone: Kinesis
// and/or the webhook sink in, CTI events posted to a tracker.
func runEventAdapterCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("eventadapter", "Runs the Event Streams adapter: reads TaskRouter CloudEvents from Kinesis and/or the webhook sink and posts CTI events to a tracker.", stderr)
	var cfg ctiConfig
	var lf logFlags
	dataDir := fs.String("data-dir", "./data", "where checkpoints and the duplicate window are kept")
	httpAddr := fs.String("http-addr", "127.0.0.1:8085", "webhook sink (/twilio/events), metrics and health")
	token := fs.String("twilio-auth-token", "", "Twilio auth token that signs webhook requests (env TWILIO_AUTH_TOKEN)")
	publicURL := fs.String("public-http-url", "", "the https URL Twilio posts the webhook to, without /twilio/events (default http://<http-addr>)")
	trackerURL := fs.String("tracker-url", "http://127.0.0.1:8084", "the tracker's base URL")
	eventsToken := fs.String("events-token", "", "bearer token for the tracker's /api/events")
	cfg.registerEvents(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, map[string]string{"twilio-auth-token": "TWILIO_AUTH_TOKEN"}); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if cfg.DisableWebhook && cfg.Kinesis.Stream == "" {
		return fmt.Errorf("no source: give --kinesis-stream, or keep the webhook sink")
	}
	if err := os.MkdirAll(filepath.Join(*dataDir, "eventadapter"), 0o750); err != nil {
		return err
	}
	store, err := eabolt.Open(filepath.Join(*dataDir, "eventadapter", "events.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	public := strings.TrimSuffix(*publicURL, "/")
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	reg := newRegistry()
	adapter := eventadapter.New(&tracker.Client{URL: strings.TrimSuffix(*trackerURL, "/"), Token: *eventsToken}, store, log, reg)
	mux := http.NewServeMux()
	if !cfg.DisableWebhook {
		wh, err := webhook.New(webhook.Config{PublicURL: public + "/twilio/events", AuthToken: *token}, adapter.Handle, log)
		if err != nil {
			ln.Close()
			return err
		}
		mux.Handle("/twilio/events", wh)
	}
	var src *kinesis.Source
	if cfg.Kinesis.Stream != "" {
		if src, err = kinesis.New(ctx, cfg.Kinesis, store, log, reg); err != nil {
			ln.Close()
			return err
		}
	}
	addOps(mux, reg, func() bool { return true })
	log.Info("event adapter running", "http_addr", ln.Addr().String(), "tracker", *trackerURL, "kinesis_stream", cfg.Kinesis.Stream,
		"webhook", !cfg.DisableWebhook, "version", callrec.Version)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if src != nil {
		wg.Go(func() {
			if err := src.Run(runCtx, adapter.Handle); err != nil {
				log.Error("kinesis source", callrec.LogKeyErr, err)
			}
		})
	}
	return serveHTTP(ctx, ln, mux, log, func() {
		stop()
		wg.Wait()
	})
}
