package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"callrec"
	"callrec/consolidation/ingest"
	"callrec/consolidation/recsource"
	"callrec/internal/link"
	"callrec/mediaadapter"
	"callrec/recorder"
	"callrec/recorder/bolt"
	"callrec/simulate"
)

// allConfig is the configuration of `callrec run`.
type allConfig struct {
	DataDir         string
	HTTPAddr        string
	MediaAddr       string
	MediaPath       string
	PublicURL       string
	AuthToken       string
	SkipSignature   bool
	TLSCert, TLSKey string
	Recorder        recorder.Config
	Media           mediaadapter.Config
	RetainBytes     int
	ShutdownTimeout time.Duration
	Pprof           bool
	Demo            bool
	CTI             ctiConfig
	Consolidation   consolidationConfig
}

func (c *allConfig) register(fs *flag.FlagSet) {
	def := recorder.DefaultConfig()
	c.Recorder = def
	fs.StringVar(&c.DataDir, "data-dir", "./data", "where recordings and indexes are kept")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "web UI, API, Twilio webhooks, metrics and health listen address")
	fs.StringVar(&c.MediaAddr, "media-addr", "127.0.0.1:8081", "Twilio Media Streams WebSocket listen address")
	fs.StringVar(&c.MediaPath, "media-path", "/media", "path of the Media Streams WebSocket endpoint")
	fs.StringVar(&c.PublicURL, "public-url", "", "the wss:// URL Twilio is told to use; signatures are checked against it (default: ws://<media-addr><media-path>)")
	fs.StringVar(&c.AuthToken, "twilio-auth-token", "", "Twilio auth token that signs Media Streams upgrades (env TWILIO_AUTH_TOKEN)")
	fs.BoolVar(&c.SkipSignature, "insecure-skip-signature", false, "accept unsigned Media Streams (development only: anyone who can reach the port can inject audio)")
	fs.StringVar(&c.TLSCert, "media-tls-cert", "", "certificate file: serve wss:// on the media address")
	fs.StringVar(&c.TLSKey, "media-tls-key", "", "key file for --media-tls-cert")
	nodeFlag(fs, &c.Recorder.NodeID)
	fs.DurationVar(&c.Recorder.FlushInterval, "flush-interval", def.FlushInterval, "how often audio is written, synced and acknowledged")
	fs.BoolVar(&c.Recorder.Fsync, "fsync", def.Fsync, "fsync recordings before acknowledging frames")
	fs.DurationVar(&c.Recorder.LagLimit, "lag-limit", def.LagLimit, "how long to wait for a lagging track or a late frame before writing silence")
	fs.IntVar(&c.RetainBytes, "retain-bytes", link.DefaultRetainBytes, "per-stream budget of unacknowledged audio kept by the adapter")
	fs.DurationVar(&c.Media.IdleTimeout, "idle-timeout", mediaadapter.DefaultIdleTimeout, "close a stream after this long without a message")
	fs.DurationVar(&c.Media.StartTimeout, "start-timeout", mediaadapter.DefaultStartTimeout, "close a socket that sends no start within this long")
	fs.Int64Var(&c.Media.ReadLimit, "read-limit", mediaadapter.DefaultReadLimit, "largest Media Streams message accepted, bytes")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the HTTP address")
	c.CTI.register(fs)
	c.Consolidation.register(fs)
	fs.BoolVar(&c.Demo, "demo", false, "play a steady trickle of simulated Flex calls through the whole flow: signed Event Streams, the tracker, Start/Stop Stream on a simulated Twilio API, real audio (generates an auth token if none is set)")
}

// nodeFlag registers --node-id: the recorder node id, unique in the pool.
func nodeFlag(fs *flag.FlagSet, dst *uint16) {
	*dst = 1
	fs.Func("node-id", "recorder node id 1..9999, unique in the pool (prefix of every INUM; default 1, or the ordinal+1 of a StatefulSet hostname like recorder-2)", func(s string) error {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil || v == 0 || v > callrec.MaxNodeID {
			return fmt.Errorf("want 1..%d", callrec.MaxNodeID)
		}
		*dst = uint16(v)
		return nil
	})
	if h, err := os.Hostname(); err == nil {
		if n, ok := ordinal(h); ok {
			*dst = n
		}
	}
}

// ordinal returns 1 + the trailing "-N" of a StatefulSet pod name.
func ordinal(host string) (uint16, bool) {
	for i := len(host) - 1; i > 0; i-- {
		if host[i] == '-' {
			v, err := strconv.ParseUint(host[i+1:], 10, 16)
			if err != nil || v+1 > callrec.MaxNodeID {
				return 0, false
			}
			return uint16(v + 1), true
		}
		if host[i] < '0' || host[i] > '9' {
			return 0, false
		}
	}
	return 0, false
}

func runAllCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", "Runs every role in one process: the Twilio Media Streams endpoint, the recorder and the API.", stderr)
	var cfg allConfig
	var lf logFlags
	cfg.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, map[string]string{"twilio-auth-token": "TWILIO_AUTH_TOKEN", "twilio-account-sid": "TWILIO_ACCOUNT_SID"}); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	return runAll(ctx, cfg, log, nil)
}

// system is every role of `callrec run`, wired in one process.
type system struct {
	cfg      allConfig
	log      *slog.Logger
	reg      *prometheus.Registry
	idx      *bolt.Index
	node     *recorder.Node
	linkSrv  *link.Server
	client   *link.Client
	media    *mediaadapter.Server
	mediaLn  net.Listener
	httpLn   net.Listener
	ready    atomic.Bool
	pipes    sync.WaitGroup
	linkCtx  context.Context
	cti      *cti
	cons     *consolidation
	queue    *ingest.Queue // recording events to the join
	MediaURL string        // where to connect (ws:// or wss://)
	HTTPURL  string
	// DemoLogin is the demo admin's name and password (with --demo).
	DemoLogin [2]string
}

// runAll starts every role, calls onReady (tests learn the addresses), and
// runs until ctx is done; then it shuts down in order: media sockets first,
// then the link once every stream is finished, then the recorder, then the
// API.
func runAll(ctx context.Context, cfg allConfig, log *slog.Logger, onReady func(*system)) error {
	var demo *demoTwilio
	if cfg.Demo {
		if cfg.AuthToken == "" {
			cfg.AuthToken = demoToken()
			log.Info("demo: generated a Twilio auth token for the simulated calls (signature checks stay on)")
		}
		if cfg.CTI.AccountSID == "" {
			var err error
			if demo, err = startDemoTwilio(cfg.AuthToken); err != nil {
				return err
			}
			defer demo.close()
			cfg.CTI.AccountSID, cfg.CTI.APIURL = simulate.DefaultAccountSID, demo.url
		}
	}
	s := &system{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if s.cons, err = openConsolidation(cfg.DataDir, log); err != nil {
		return err
	}
	defer s.cons.close(log)
	s.queue = ingest.NewQueue(s.cons.joiner, log)
	queueClosed := false
	defer func() {
		if !queueClosed {
			s.queue.Close(0)
		}
	}()
	if err := s.open(); err != nil {
		s.closeIndex()
		return err
	}
	defer s.closeIndex()
	s.cons.serve(cfg.Consolidation, recsource.Local{Node: s.node}, s.node.Handler(), log)
	if err := resyncRecordings(ctx, s.node, s.cons.joiner); err != nil {
		s.mediaLn.Close()
		s.httpLn.Close()
		return err
	}
	if cfg.CTI.AccountSID != "" {
		var err error
		if s.cti, err = openCTI(ctx, cfg.CTI, cfg.DataDir, s.cfg.Media.AuthToken, s.cfg.Media.PublicURL, s.HTTPURL, log, s.reg); err != nil {
			s.mediaLn.Close()
			s.httpLn.Close()
			return fmt.Errorf("CTI path: %w", err)
		}
		defer s.cti.close()
		if err := s.cti.svc.SetContactSink(ctx, s.cons.joiner); err != nil {
			s.mediaLn.Close()
			s.httpLn.Close()
			return err
		}
	}
	if cfg.Demo {
		name, pw, err := s.cons.demoAdmin(ctx)
		if err != nil {
			s.mediaLn.Close()
			s.httpLn.Close()
			return fmt.Errorf("demo admin: %w", err)
		}
		s.DemoLogin = [2]string{name, pw}
	}

	nodeCtx, stopNode := context.WithCancel(context.Background())
	linkCtx, stopLink := context.WithCancel(context.Background())
	s.linkCtx = linkCtx
	ctiCtx, stopCTI := context.WithCancel(context.Background())
	defer stopCTI()
	var bg sync.WaitGroup
	if s.cti != nil {
		s.cti.run(ctiCtx, &bg)
	}
	nodeDone := make(chan struct{})
	bg.Go(func() { _ = s.node.Run(nodeCtx); close(nodeDone) })
	bg.Go(func() { _ = s.client.Run(linkCtx) })

	mediaSrv := &http.Server{Handler: s.mediaMux(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	httpSrv := &http.Server{Handler: s.httpMux(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 2)
	bg.Go(func() {
		var err error
		if cfg.TLSCert != "" {
			err = mediaSrv.ServeTLS(s.mediaLn, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = mediaSrv.Serve(s.mediaLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("media listener: %w", err)
		}
	})
	bg.Go(func() {
		var err error
		if cc := cfg.Consolidation; cc.TLSCert != "" {
			err = httpSrv.ServeTLS(s.httpLn, cc.TLSCert, cc.TLSKey)
		} else {
			err = httpSrv.Serve(s.httpLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http listener: %w", err)
		}
	})
	s.ready.Store(true)
	demoCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	if demo != nil {
		bg.Go(func() { runDemo(demoCtx, s.HTTPURL+"/twilio/events", s.cfg.Media.AuthToken, demo.tw, log) })
	}
	log.Info("callrec running", "media_url", s.MediaURL, "public_url", s.cfg.Media.PublicURL, "http_url", s.HTTPURL,
		"data_dir", cfg.DataDir, "node", cfg.Recorder.NodeID, "version", callrec.Version)
	if cfg.Demo {
		log.Info("DEMO: sign in to the web UI", "url", s.HTTPURL+"/", "user", s.DemoLogin[0], "password", s.DemoLogin[1])
		fmt.Fprintf(os.Stderr, "\n  callrec demo is running: open %s/ and sign in as %q with password %q\n\n", s.HTTPURL, s.DemoLogin[0], s.DemoLogin[1])
	}
	if onReady != nil {
		onReady(s)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.ready.Store(false)
	stopDemo()
	stopCTI() // no new stream orders while the media tier drains
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	_ = mediaSrv.Shutdown(sctx)
	if err := s.media.Shutdown(sctx); err != nil {
		log.Error("media shutdown", callrec.LogKeyErr, err)
	}
	if err := s.client.Wait(sctx); err != nil {
		log.Error("waiting for recordings to finish", callrec.LogKeyErr, err)
	}
	stopLink()
	s.pipes.Wait()
	stopNode()
	<-nodeDone
	s.queue.Close(5 * time.Second) // the last STOPPED events reach the join
	queueClosed = true
	_ = httpSrv.Shutdown(sctx)
	bg.Wait()
	log.Info("stopped")
	return runErr
}

// open opens the index and recorder, binds the listeners and builds the
// media adapter.
func (s *system) open() error {
	cfg := &s.cfg
	nodeDir := filepath.Join(cfg.DataDir, "recorder", strconv.Itoa(int(cfg.Recorder.NodeID)))
	if err := os.MkdirAll(nodeDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var err error
	if s.idx, err = bolt.Open(filepath.Join(nodeDir, "index.db")); err != nil {
		return err
	}
	rm := recorder.NewMetrics(s.reg)
	notify := multiNotifier{recorder.LogNotifier{Log: s.log.With(callrec.LogKeyComponent, "events")}, s.queue}
	if s.node, err = recorder.Open(context.Background(), cfg.Recorder, s.idx, recorder.FileStore{Root: nodeDir}, notify, s.log, rm); err != nil {
		return err
	}
	s.linkSrv = link.NewServer(s.node, cfg.Recorder.NodeID, s.log.With(callrec.LogKeyComponent, "link"))
	s.client = link.NewClient(link.ClientConfig{
		AdapterID: link.NewAdapterID("run"), RetainBytes: cfg.RetainBytes, Log: s.log.With(callrec.LogKeyComponent, "link"),
		Metrics: link.NewMetrics(s.reg),
		Dial: func(ctx context.Context) (net.Conn, error) {
			a, b := net.Pipe()
			s.pipes.Go(func() { _ = s.linkSrv.ServeConn(s.linkCtx, b) })
			return a, nil
		},
	})
	if s.mediaLn, err = net.Listen("tcp", cfg.MediaAddr); err != nil {
		return fmt.Errorf("media listener: %w", err)
	}
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		s.mediaLn.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	scheme := "ws"
	if cfg.TLSCert != "" {
		scheme = "wss"
	}
	s.MediaURL = scheme + "://" + s.mediaLn.Addr().String() + cfg.MediaPath
	s.HTTPURL = "http://" + s.httpLn.Addr().String()
	if cfg.Consolidation.TLSCert != "" {
		s.HTTPURL = "https://" + s.httpLn.Addr().String()
	}
	mc := cfg.Media
	mc.PublicURL, mc.AuthToken, mc.SkipSignature, mc.NodeID = cfg.PublicURL, cfg.AuthToken, cfg.SkipSignature, "run"
	mc.Path = cfg.MediaPath
	if mc.PublicURL == "" {
		mc.PublicURL = s.MediaURL
	}
	if mc.AuthToken == "" && mc.SkipSignature {
		s.log.Warn("INSECURE: no Twilio auth token and --insecure-skip-signature given: unsigned Media Streams are accepted; anyone who can reach " + s.MediaURL + " can inject audio")
	}
	if s.media, err = mediaadapter.New(mc, s.client, s.log, s.reg); err != nil {
		s.mediaLn.Close()
		s.httpLn.Close()
		return err
	}
	s.cfg.Media = mc
	return nil
}

func (s *system) closeIndex() {
	if s.idx != nil {
		if err := s.idx.Close(); err != nil {
			s.log.Error("close index", callrec.LogKeyErr, err)
		}
	}
}

func (s *system) mediaMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.cfg.MediaPath, s.media)
	// The streams of a dual-stream pair (tracker --dual-streams) come to
	// <media path>/pair/<group>/<copy>.
	mux.Handle(strings.TrimSuffix(s.cfg.MediaPath, "/")+"/pair/", s.media)
	return mux
}

func (s *system) httpMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.cons.web.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() || !s.client.Connected() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	if s.cti != nil {
		if s.cti.webhook != nil {
			mux.Handle("/twilio/events", s.cti.webhook)
		}
		mux.Handle("POST /twilio/stream-status", s.cti.status)
	}
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
