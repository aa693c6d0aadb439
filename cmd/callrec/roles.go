package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	"callrec/internal/httpio"
	"callrec/internal/link"
	"callrec/mediaadapter"
	"callrec/placement"
	"callrec/pool"
	"callrec/recorder"
	"callrec/recorder/bolt"
)

// runRecorderCommand runs a recorder alone: adapters connect to its link
// address; its API serves recordings.
func runRecorderCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("recorder", "Runs a recorder node: accepts media adapters on --link-addr, writes and indexes recordings, serves them on --http-addr.", stderr)
	def := recorder.DefaultConfig()
	cfg := def
	var lf logFlags
	dataDir := fs.String("data-dir", "./data", "where recordings and the index are kept")
	linkAddr := fs.String("link-addr", "127.0.0.1:8090", "address media adapters connect to")
	httpAddr := fs.String("http-addr", "127.0.0.1:8082", "API, metrics and health listen address")
	nodeFlag(fs, &cfg.NodeID)
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", def.FlushInterval, "how often audio is written, synced and acknowledged")
	fs.BoolVar(&cfg.Fsync, "fsync", def.Fsync, "fsync recordings before acknowledging frames")
	fs.DurationVar(&cfg.LagLimit, "lag-limit", def.LagLimit, "how long to wait for a lagging track or a late frame before writing silence")
	fs.DurationVar(&cfg.ResumeGrace, "resume-grace", def.ResumeGrace, "how long a stream waits for its adapter to reconnect")
	apiToken := fs.String("api-token", "", "bearer token required on the recordings API (consolidation's --recorder-token)")
	consURL := fs.String("consolidation-url", "", "consolidation's base URL: STARTED/STOPPED are sent to its ingest API")
	ingestToken := fs.String("ingest-token", "", "bearer token for consolidation's ingest API")
	capacity := fs.Int("capacity", 0, "most concurrent streams this node takes (announced to the pool; 0: unknown)")
	var pf poolFlags
	pf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	nodeDir := filepath.Join(*dataDir, "recorder", strconv.Itoa(int(cfg.NodeID)))
	if err := os.MkdirAll(nodeDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	idx, err := bolt.Open(filepath.Join(nodeDir, "index.db"))
	if err != nil {
		return err
	}
	defer idx.Close()
	reg := newRegistry()
	notify := multiNotifier{recorder.LogNotifier{Log: log.With(callrec.LogKeyComponent, "events")}}
	var queue *ingest.Queue
	if *consURL != "" {
		queue = ingest.NewQueue(ingest.NewClient(*consURL, *ingestToken), log)
		defer queue.Close(5 * time.Second)
		notify = append(notify, queue)
	}
	node, err := recorder.Open(ctx, cfg, idx, recorder.FileStore{Root: nodeDir}, notify, log, recorder.NewMetrics(reg))
	if err != nil {
		return err
	}
	if queue != nil {
		// What consolidation may have missed while this node was down.
		if err := resyncRecordings(ctx, node, queue); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *linkAddr)
	if err != nil {
		return fmt.Errorf("link listener: %w", err)
	}
	srv := link.NewServer(node, cfg.NodeID, log.With(callrec.LogKeyComponent, "link"))
	mux := http.NewServeMux()
	mux.Handle("/api/", requireToken(*apiToken, node.Handler(), log))
	mux.Handle("GET /{$}", requireToken(*apiToken, homePage(node), log))
	addOps(mux, reg, func() bool { return true })
	if *apiToken == "" {
		log.Warn("no --api-token: anyone who reaches " + *httpAddr + " can read recordings")
	}
	httpLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	var members *pool.Pool
	if pf.on() {
		pc, err := pf.config(log, reg)
		if err != nil {
			ln.Close()
			httpLn.Close()
			return err
		}
		var draining atomic.Bool
		var self atomic.Pointer[pool.Pool] // set once joined (Meta is called during Join too)
		started := time.Now().UTC()
		pc.Meta = func() pool.Meta {
			return pool.Meta{Role: pool.RoleRecorder, Version: callrec.Version, Addr: serviceAddr(&pf, ln.Addr(), self.Load()),
				HTTPAddr: serviceAddr(&pf, httpLn.Addr(), self.Load()), RecorderNode: cfg.NodeID, Capacity: *capacity,
				Active: node.Active(), FreeDiskBytes: freeDisk(nodeDir), Draining: draining.Load(), Started: started}
		}
		pc.OnDrain = func() {
			draining.Store(true)
			log.Info("drain requested: no new streams are placed here; leaving once the open ones finish", "active", node.Active())
			go drainThenStop(ctx, node.Active, stopAll, log)
		}
		if members, err = pool.Join(ctx, pc); err != nil {
			ln.Close()
			httpLn.Close()
			return err
		}
		self.Store(members)
		defer members.Leave(pool.DefaultLeaveTimeout)
		go announceActive(ctx, members, node.Active)
	}
	poolAddr := ""
	if members != nil {
		poolAddr = members.Self().Addr
	}
	log.Info("recorder running", "link_addr", ln.Addr().String(), "http_addr", httpLn.Addr().String(), "node", cfg.NodeID,
		"pool_addr", poolAddr, "version", callrec.Version)

	// Stop order: the link first (adapters reconnect elsewhere or resume),
	// then the node finishes what is open, then the API.
	linkCtx, stopLink := context.WithCancel(context.Background())
	nodeCtx, stopNode := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = node.Run(nodeCtx) })
	linkDone := make(chan error, 1)
	go func() { linkDone <- srv.Serve(linkCtx, ln) }()
	return serveHTTP(ctx, httpLn, mux, log, func() {
		stopLink()
		<-linkDone
		stopNode()
		wg.Wait()
	})
}

// runMediaAdapterCommand runs the Twilio Media Streams adapter alone,
// forwarding to a recorder's link address.
func runMediaAdapterCommand(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("mediaadapter", "Runs a Twilio Media Streams adapter: accepts Twilio's signed WebSocket upgrades and forwards frames to a recorder.", stderr)
	var mc mediaadapter.Config
	var lf logFlags
	mediaAddr := fs.String("media-addr", "127.0.0.1:8081", "Twilio Media Streams WebSocket listen address")
	mediaPath := fs.String("media-path", "/media", "path of the Media Streams endpoint")
	httpAddr := fs.String("http-addr", "127.0.0.1:8083", "metrics and health listen address")
	recAddr := fs.String("recorder", "127.0.0.1:8090", "link address of the recorder (without a pool; with --pool-seeds recorders are chosen from the pool per stream); with --dual-recording and no pool, two comma-separated addresses: replica 1's, replica 2's")
	retain := fs.Int("retain-bytes", link.DefaultRetainBytes, "per-stream budget of unacknowledged audio kept for replay")
	tlsCert := fs.String("media-tls-cert", "", "certificate file: serve wss:// on the media address")
	tlsKey := fs.String("media-tls-key", "", "key file for --media-tls-cert")
	fs.StringVar(&mc.PublicURL, "public-url", "", "the wss:// URL Twilio is told to use; signatures are checked against it")
	fs.StringVar(&mc.AuthToken, "twilio-auth-token", "", "Twilio auth token (env TWILIO_AUTH_TOKEN)")
	fs.BoolVar(&mc.SkipSignature, "insecure-skip-signature", false, "accept unsigned Media Streams (development only)")
	fs.DurationVar(&mc.IdleTimeout, "idle-timeout", mediaadapter.DefaultIdleTimeout, "close a stream after this long without a message")
	fs.DurationVar(&mc.StartTimeout, "start-timeout", mediaadapter.DefaultStartTimeout, "close a socket that sends no start within this long")
	fs.Int64Var(&mc.ReadLimit, "read-limit", mediaadapter.DefaultReadLimit, "largest Media Streams message accepted, bytes")
	fs.BoolVar(&mc.DualRecording, "dual-recording", false, "write every stream to two recorders at once (two recordings, replicas 1 and 2). "+
		"With a pool: two different recorders of the pool, each replica failing over on its own; a stream that starts while only one recorder "+
		"is available is written once (logged, callrec_media_dual_recording_single_total). Without a pool: the two --recorder addresses, no failover")
	var pf poolFlags
	pf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, map[string]string{"twilio-auth-token": "TWILIO_AUTH_TOKEN"}); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	ln, err := net.Listen("tcp", *mediaAddr)
	if err != nil {
		return fmt.Errorf("media listener: %w", err)
	}
	if mc.PublicURL == "" {
		mc.PublicURL = "ws://" + ln.Addr().String() + *mediaPath
	}
	mc.Path = *mediaPath
	if mc.AuthToken == "" && mc.SkipSignature {
		log.Warn("INSECURE: accepting unsigned Media Streams")
	}
	mc.NodeID = link.NewAdapterID("mediaadapter")
	reg := newRegistry()
	linkCtx, stopLink := context.WithCancel(context.Background())
	defer stopLink()
	// The recorder side: one recorder (--recorder), or the pool's recorders
	// chosen per stream with failover (--pool-seeds).
	var (
		opener mediaadapter.Opener
		links  interface {
			Connected() bool
			Wait(context.Context) error
		}
		runLink func()
		members *pool.Pool
		media   *mediaadapter.Server
		self    atomic.Pointer[mediaadapter.Server]
		poolP   atomic.Pointer[pool.Pool]
	)
	if pf.on() {
		pc, err := pf.config(log, reg)
		if err != nil {
			ln.Close()
			return err
		}
		started := time.Now().UTC()
		pc.Meta = func() pool.Meta {
			m := pool.Meta{Role: pool.RoleMediaAdapter, Version: callrec.Version, Addr: serviceAddr(&pf, ln.Addr(), poolP.Load()), Started: started}
			if s := self.Load(); s != nil {
				m.Active, m.Draining = s.Active(), s.Draining()
			}
			return m
		}
		pc.OnDrain = func() {
			if s := self.Load(); s != nil {
				s.Drain()
				go drainThenStop(ctx, s.Active, stopAll, log)
			}
		}
		if members, err = pool.Join(ctx, pc); err != nil {
			ln.Close()
			return err
		}
		poolP.Store(members)
		defer members.Leave(pool.DefaultLeaveTimeout)
		placer := placement.New(linkCtx, placement.Config{AdapterID: mc.NodeID, Recorders: recorderView{members}, RetainBytes: *retain,
			Log: log, Registerer: reg})
		opener, links, runLink = placer, placer, placer.Done
	} else {
		clients, err := recorderClients(*recAddr, mc.DualRecording, mc.NodeID, *retain, log, link.NewMetrics(reg))
		if err != nil {
			ln.Close()
			return err
		}
		if len(clients) == 1 {
			opener, links, runLink = clients[0], clients[0], func() { _ = clients[0].Run(linkCtx) }
		} else {
			rs := make(mediaadapter.Replicas, len(clients))
			for i, c := range clients {
				rs[i] = c
			}
			opener, links, runLink = rs, clients, func() { clients.run(linkCtx) }
		}
	}
	media, err = mediaadapter.New(mc, opener, log, reg)
	if err != nil {
		ln.Close()
		return err
	}
	self.Store(media)
	if members != nil {
		go announceActive(ctx, members, media.Active)
	}
	mux := http.NewServeMux()
	mux.Handle(*mediaPath, media)
	mux.Handle(strings.TrimSuffix(*mediaPath, "/")+"/pair/", media) // the copies of dual-stream pairs
	mediaSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(runLink)
	wg.Go(func() {
		var err error
		if *tlsCert != "" {
			err = mediaSrv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			err = mediaSrv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("media listener", callrec.LogKeyErr, err)
		}
	})
	ops := http.NewServeMux()
	addOps(ops, reg, func() bool { return links.Connected() && !media.Draining() })
	httpLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		stopLink()
		_ = mediaSrv.Close()
		wg.Wait()
		return fmt.Errorf("http listener: %w", err)
	}
	poolAddr := ""
	if members != nil {
		poolAddr = members.Self().Addr
	}
	log.Info("media adapter running", "media_addr", ln.Addr().String(), "public_url", mc.PublicURL, "recorder", *recAddr,
		"http_addr", httpLn.Addr().String(), "pool_addr", poolAddr, "version", callrec.Version)
	return serveHTTP(ctx, httpLn, ops, log, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = mediaSrv.Shutdown(sctx)
		if err := media.Shutdown(sctx); err != nil {
			log.Error("media shutdown", callrec.LogKeyErr, err)
		}
		if err := links.Wait(sctx); err != nil {
			log.Error("waiting for recorder", callrec.LogKeyErr, err)
		}
		stopLink()
		wg.Wait()
	})
}

// recorderClients makes the link clients of an adapter without a pool: one
// per --recorder address, two with dual recording.
func recorderClients(addrs string, dual bool, adapterID string, retain int, log *slog.Logger, lm *link.Metrics) (linkClients, error) {
	var list []string
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	switch {
	case dual && len(list) != 2:
		return nil, fmt.Errorf("--dual-recording without a pool needs two --recorder addresses (comma-separated), got %d", len(list))
	case !dual && len(list) != 1:
		return nil, fmt.Errorf("--recorder takes one address (two only with --dual-recording), got %d", len(list))
	}
	var out linkClients
	for i, addr := range list {
		var d net.Dialer
		id := adapterID
		if len(list) > 1 {
			id = fmt.Sprintf("%s-r%d", adapterID, i+1)
		}
		out = append(out, link.NewClient(link.ClientConfig{AdapterID: id, RetainBytes: retain, Metrics: lm,
			Log:  log.With(callrec.LogKeyComponent, "link", "recorder", addr),
			Dial: func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }}))
	}
	return out, nil
}

// linkClients are the links of a dual-recording adapter without a pool.
type linkClients []*link.Client

func (cs linkClients) Connected() bool {
	for _, c := range cs {
		if !c.Connected() {
			return false
		}
	}
	return true
}

func (cs linkClients) Wait(ctx context.Context) error {
	for _, c := range cs {
		if err := c.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (cs linkClients) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { _ = c.Run(ctx) })
	}
	wg.Wait()
}

// requireToken serves h only to requests with the bearer token (all
// requests when token is empty).
func requireToken(token string, h http.Handler, log *slog.Logger) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			httpio.Error(w, r, log, callrec.Errorf(callrec.EUNAUTHENTICATED, "missing or wrong bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// addOps adds /metrics, /healthz and /readyz.
func addOps(mux *http.ServeMux, reg *prometheus.Registry, ready func() bool) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// serveHTTP serves h on ln until ctx is done, then runs stop and shuts
// the server down.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, stop func()) error {
	return serveHTTPTLS(ctx, ln, h, "", "", log, stop)
}
