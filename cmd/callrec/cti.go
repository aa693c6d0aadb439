package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/eventadapter"
	eabolt "callrec/eventadapter/bolt"
	"callrec/eventadapter/kinesis"
	"callrec/eventadapter/webhook"
	"callrec/internal/twilio"
	"callrec/tracker"
	trbolt "callrec/tracker/bolt"
	"callrec/tracker/streams"
)

// ctiConfig configures the CTI path of `callrec run`: Event Streams in,
// Start/Stop Stream out. It is on when an account SID is set.
type ctiConfig struct {
	AccountSID     string
	APIURL         string // Twilio API base URL override (the simulator, Prism)
	PublicHTTPURL  string // how Twilio reaches our HTTP listener (webhook, status callbacks)
	Kinesis        kinesis.Config
	RecordAgents   string // comma-separated agent extensions or worker SIDs
	RecordAttr     string // attribute=value|value
	ExcludeAgents  string
	DisableWebhook bool
	LongCall       time.Duration
	LongHold       time.Duration
	DualStreams    bool // two Twilio streams per recorded call (streams.Config.DualStreams)
	// ContactRetention and ContactTombstones: tracker.RetentionConfig.
	ContactRetention  time.Duration
	ContactTombstones time.Duration
}

func (c *ctiConfig) register(fs *flag.FlagSet) {
	c.registerTracker(fs)
	c.registerEvents(fs)
}

// registerTracker registers the flags of the tracker and Stream Manager.
func (c *ctiConfig) registerTracker(fs *flag.FlagSet) {
	fs.StringVar(&c.AccountSID, "twilio-account-sid", "", "Twilio account SID: turns on the CTI path (Event Streams in, Start/Stop Stream out) (env TWILIO_ACCOUNT_SID)")
	fs.StringVar(&c.APIURL, "twilio-api-url", "", "Twilio REST API base URL override (the simulator or a mock; default Twilio)")
	fs.StringVar(&c.PublicHTTPURL, "public-http-url", "", "the https URL Twilio uses to reach --http-addr (Event Streams webhook, stream status callbacks; default http://<http-addr>)")
	fs.StringVar(&c.RecordAgents, "record-agents", "", "record only these agents (extensions or worker SIDs, comma-separated; default everyone)")
	fs.StringVar(&c.RecordAttr, "record-attribute", "", "record workers whose attribute matches, e.g. team=sales|support")
	fs.StringVar(&c.ExcludeAgents, "exclude-agents", "", "never record these agents")
	fs.DurationVar(&c.LongCall, "long-call-alarm", 120*time.Minute, "raise the long-call alarm (log event and metric) for calls longer than this")
	fs.BoolVar(&c.DualStreams, "dual-streams", false, "dual-stream capture: start two Twilio streams per recorded call (names <stream>-c1 and -c2, URLs <media URL>/pair/<stream>/1 and /2), each to its own media adapter, merged into one recording; both_tracks copies use all four of the call's Twilio forks")
	fs.DurationVar(&c.LongHold, "long-hold-alarm", 0, "raise the long-hold alarm for customers on hold longer than this (e.g. 120m; polls each active call's conference every 30 s; 0: off)")
	fs.DurationVar(&c.ContactRetention, "contact-retention", 24*time.Hour, "keep an ended contact (task completed, canceled or deleted) in the tracker's memory and store this long after its last event, "+
		"then retire it (once consolidation has it) and ignore, log and count its later events; 0 keeps contacts forever. It must exceed how late an event can come: "+
		"Event Streams retries a webhook for up to 4 h, a Kinesis stream keeps unread records 24 h by default (raise this with the stream's retention), "+
		"and repeats of events already handled are dropped by the event adapter's 48 h duplicate window")
	fs.DurationVar(&c.ContactTombstones, "contact-tombstones", tracker.DefaultTombstones, "keep a retired contact's tombstone (task SID and times, on disk) this long to recognize its very late events; at least --contact-retention "+
		"(the default covers a Kinesis stream with 7 days' retention)")
}

// registerEvents registers the flags of the Event Streams sources.
func (c *ctiConfig) registerEvents(fs *flag.FlagSet) {
	fs.StringVar(&c.Kinesis.Stream, "kinesis-stream", "", "read Event Streams from this Kinesis stream")
	fs.StringVar(&c.Kinesis.Region, "kinesis-region", "us-east-1", "AWS region of the Kinesis stream")
	fs.StringVar(&c.Kinesis.Endpoint, "kinesis-endpoint", "", "Kinesis endpoint override (e.g. kinesis-local)")
	fs.StringVar(&c.Kinesis.StartPosition, "kinesis-start", "latest", "where to start without a checkpoint: latest, trim_horizon or at_timestamp")
	fs.BoolVar(&c.DisableWebhook, "no-events-webhook", false, "do not serve the Event Streams webhook sink at /twilio/events")
}

// retention is the tracker's contact retention.
func (c *ctiConfig) retention() tracker.RetentionConfig {
	return tracker.RetentionConfig{Retention: c.ContactRetention, Tombstones: c.ContactTombstones}
}

func (c *ctiConfig) rules() tracker.Rules {
	r := tracker.Rules{Agents: splitList(c.RecordAgents), Exclude: splitList(c.ExcludeAgents)}
	if k, v, ok := strings.Cut(c.RecordAttr, "="); ok {
		r.Attribute, r.Values = k, strings.Split(v, "|")
	}
	r.MonitorAll = len(r.Agents) == 0 && r.Attribute == ""
	return r
}

// streamsConfig configures the Stream Manager: streams go to mediaURL,
// status callbacks to publicHTTPURL.
func (c *ctiConfig) streamsConfig(mediaURL, publicHTTPURL string) streams.Config {
	return streams.Config{MediaURL: mediaURL, StatusCallback: publicHTTPURL + "/twilio/stream-status", DualStreams: c.DualStreams}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// cti is the running CTI path.
type cti struct {
	events  *eabolt.Store
	trStore *trbolt.Store
	mgr     *streams.Manager
	svc     *tracker.Service
	adapter *eventadapter.Adapter
	webhook http.Handler
	status  http.Handler
	kin     *kinesis.Source
	rest    *twilio.REST
}

// openCTI builds the CTI path; mediaURL is the public wss URL streams go to.
func openCTI(ctx context.Context, cfg ctiConfig, dataDir, token, mediaURL, httpURL string, log *slog.Logger, reg prometheus.Registerer) (*cti, error) {
	if token == "" {
		return nil, callrec.Errorf(callrec.EINVALID, "the CTI path needs the Twilio auth token")
	}
	if cfg.PublicHTTPURL == "" {
		cfg.PublicHTTPURL = httpURL
	}
	cfg.PublicHTTPURL = strings.TrimSuffix(cfg.PublicHTTPURL, "/")
	for _, d := range []string{"eventadapter", "tracker"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o750); err != nil {
			return nil, err
		}
	}
	c := &cti{}
	var err error
	if c.events, err = eabolt.Open(filepath.Join(dataDir, "eventadapter", "events.db")); err != nil {
		return nil, err
	}
	if c.trStore, err = trbolt.Open(filepath.Join(dataDir, "tracker", "tracker.db")); err != nil {
		c.close()
		return nil, err
	}
	c.rest, err = twilio.NewREST(twilio.RESTConfig{AccountSID: cfg.AccountSID, AuthToken: token, BaseURL: cfg.APIURL})
	if err != nil {
		c.close()
		return nil, err
	}
	c.mgr = streams.New(cfg.streamsConfig(mediaURL, cfg.PublicHTTPURL), c.rest, c.trStore, log, reg)
	if c.svc, err = tracker.NewService(ctx, cfg.rules(), tracker.AlarmConfig{LongCall: cfg.LongCall}, tracker.HoldConfig{LongHold: cfg.LongHold}, c.mgr, c.trStore, log, reg); err != nil {
		c.close()
		return nil, err
	}
	if err = c.svc.SetRetention(cfg.retention()); err != nil {
		c.close()
		return nil, err
	}
	c.adapter = eventadapter.New(c.svc, c.events, log.With(callrec.LogKeyComponent, "eventadapter"), reg)
	if !cfg.DisableWebhook {
		if c.webhook, err = webhook.New(webhook.Config{PublicURL: cfg.PublicHTTPURL + "/twilio/events", AuthToken: token}, c.adapter.Handle, log); err != nil {
			c.close()
			return nil, err
		}
	}
	c.status = statusCallbacks(cfg.PublicHTTPURL+"/twilio/stream-status", token, c.mgr, log, reg)
	if cfg.Kinesis.Stream != "" {
		if c.kin, err = kinesis.New(ctx, cfg.Kinesis, c.events, log.With(callrec.LogKeyComponent, "kinesis"), reg); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// run runs the Stream Manager and the Kinesis source until ctx is done.
func (c *cti) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { _ = c.mgr.Run(ctx) })
	wg.Go(func() { _ = c.svc.RunAlarms(ctx) })
	wg.Go(func() { _ = c.svc.RunHoldWatch(ctx, c.rest) })
	wg.Go(func() { _ = c.svc.RunRetention(ctx) })
	if c.kin != nil {
		wg.Go(func() { _ = c.kin.Run(ctx, c.adapter.Handle) })
	}
}

func (c *cti) close() {
	if c.events != nil {
		_ = c.events.Close()
	}
	if c.trStore != nil {
		_ = c.trStore.Close()
	}
}

// statusCallbacks receives Twilio's signed stream status callbacks; a
// stream-error for a stream still wanted makes the Stream Manager start a
// replacement.
func statusCallbacks(publicURL, token string, mgr *streams.Manager, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	val := twilio.NewValidator(token)
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callrec_stream_status_callbacks_total", Help: "Twilio stream status callbacks, by event."}, []string{"event"})
	if reg != nil {
		reg.MustRegister(events)
	}
	log = log.With(callrec.LogKeyComponent, "stream-status")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		params := map[string]string{}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
		if !val.ValidateForm(publicURL, params, r.Header.Get(twilio.SignatureHeader)) {
			log.Warn("refused stream status callback: bad signature", callrec.LogKeyRemote, r.RemoteAddr)
			http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
			return
		}
		ev := params["StreamEvent"]
		events.WithLabelValues(ev).Inc()
		attrs := []any{"event", ev, callrec.LogKeyCallSID, params["CallSid"], callrec.LogKeyStreamSID, params["StreamSid"], "name", params["StreamName"]}
		if ev == "stream-error" {
			log.Warn("stream died while the call is up", append(attrs, callrec.LogKeyErr, params["StreamError"])...)
			if _, err := mgr.StreamFailed(r.Context(), params["StreamName"], params["StreamSid"], params["StreamError"]); err != nil {
				log.Error("order a replacement stream", callrec.LogKeyErr, err)
				http.Error(w, "cannot handle the callback now", http.StatusServiceUnavailable)
				return
			}
		} else {
			log.Info("stream status", attrs...)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
