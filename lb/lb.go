package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/ws"
)

// Backend is one mediaadapter in the view a Backends gives.
type Backend struct {
	// Name identifies the adapter (its memberlist node name); the lb keys
	// its own counts and its metrics by it.
	Name string
	// URL is http://host:port of the adapter's media listener (https, ws and
	// wss are accepted too). Only its scheme and host are used: the
	// request's path and query reach the adapter unchanged.
	URL *url.URL
	// Active is the number of Media Streams the adapter last reported open.
	Active int
	// Draining adapters get no new connection.
	Draining bool
}

// Backends gives the adapters that may take new connections.
type Backends interface {
	// Backends returns the current view. The lb calls it at every pick,
	// holding its own lock so that picks and reports are seen in one order:
	// it must be quick and must not call the lb. The slice is not modified.
	Backends() []Backend
}

// Config configures an LB.
type Config struct {
	// Backends is the pool view (required).
	Backends Backends
	// Path is the only path upgrades are accepted on (default DefaultPath).
	Path string
	// TrustForwarded keeps the client's Forwarded, X-Real-Ip and
	// X-Forwarded-* headers (appending to X-Forwarded-For). Set it only when
	// every client is a proxy of ours; otherwise they are replaced.
	TrustForwarded bool
	// DialTimeout bounds each attempt's TCP connect, TLS handshake, and the
	// wait for the adapter's answer to the upgrade (default
	// DefaultDialTimeout).
	DialTimeout time.Duration
	// MaxAttempts is how many backends one upgrade may try (default
	// DefaultMaxAttempts).
	MaxAttempts int
	// Log receives the lb's log lines (default: discarded).
	Log *slog.Logger
	// Registerer registers the lb's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Defaults for Config.
const (
	DefaultPath        = "/media"
	DefaultDialTimeout = 2 * time.Second
	DefaultMaxAttempts = 3
)

const logKeyBackend = "backend"

// LB proxies Twilio Media Streams WebSocket upgrades to the least loaded
// mediaadapter. It is an http.Handler.
type LB struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	tr    *http.Transport
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	states  map[string]*backendState
	gen     uint64
	conns   map[*conn]struct{}
	proxied int     // connections past the 101
	peers   float64 // peer factor at the last pick
	closing bool
	wg      sync.WaitGroup // one per ServeHTTP past the checks
}

// New returns an LB for cfg. It returns EINVALID for a configuration
// without Backends or with a path not starting with a slash.
func New(cfg Config) (*LB, error) {
	if cfg.Backends == nil {
		return nil, callrec.Errorf(callrec.EINVALID, "lb: no backends source")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, callrec.Errorf(callrec.EINVALID, "lb: path %q must start with /", cfg.Path)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &LB{
		cfg:    cfg,
		log:    cfg.Log.With(callrec.LogKeyComponent, "lb"),
		states: map[string]*backendState{},
		conns:  map[*conn]struct{}{},
		peers:  1,
	}
	l.m = newMetrics(cfg.Registerer, l)
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	l.tr = &http.Transport{
		Proxy:                 nil, // never an environment proxy between us and the adapters
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.DialTimeout,
		DisableCompression:    true, // no Accept-Encoding of our own on the adapter's request
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	l.proxy = &httputil.ReverseProxy{
		Rewrite:      l.rewrite,
		Transport:    (*attempts)(l),
		ErrorHandler: l.proxyError,
		ErrorLog:     slog.NewLogLogger(l.log.Handler(), slog.LevelWarn),
	}
	return l, nil
}

// peerEstimate returns the lb's current estimate of how many lbs feed the
// pool (see "Selection" in the package doc).
func (l *LB) peerEstimate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers
}

// Active returns the number of open proxied connections.
func (l *LB) Active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.proxied
}

// ServeHTTP proxies a WebSocket upgrade on the configured path to the least
// loaded adapter. Other requests get a 4xx saying what is accepted; when no
// adapter can take the upgrade, or the lb is shutting down, 503. It returns
// when the proxied connection ends.
func (l *LB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, status, reason, msg := l.check(r)
	if status != 0 {
		l.m.rejected.WithLabelValues(reason).Inc()
		switch status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", http.MethodGet)
		case http.StatusUpgradeRequired:
			w.Header().Set("Upgrade", "websocket")
		}
		http.Error(w, msg, status)
		return
	}
	c := l.register(r, p)
	if c == nil {
		l.m.rejected.WithLabelValues("shutting_down").Inc()
		w.Header().Set("Connection", "close")
		http.Error(w, "media load balancer is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.unregister(c)
	l.proxy.ServeHTTP(&responseWriter{ResponseWriter: w, c: c}, r.WithContext(context.WithValue(c.ctx, connKey{}, c)))
}

// check returns the pair a dual-stream copy's path names (nil on the plain
// path), or a status, a metric reason and a message for a request the lb
// does not proxy.
func (l *LB) check(r *http.Request) (p *pair, status int, reason, msg string) {
	if r.URL.Path != l.cfg.Path {
		prefix := strings.TrimSuffix(l.cfg.Path, "/") + pairSegment
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix)
		if !ok {
			return nil, http.StatusNotFound, "not_found", fmt.Sprintf("not found: Twilio Media Streams upgrades go to %s or %s<group>/<copy>", l.cfg.Path, prefix)
		}
		pp, err := parsePair(rest)
		if err != nil {
			l.log.Warn("refused an upgrade: malformed dual-stream pair path", "path", clip(r.URL.EscapedPath(), 300),
				callrec.LogKeyRemote, r.RemoteAddr, callrec.LogKeyErr, err)
			return nil, http.StatusNotFound, "bad_pair_path", fmt.Sprintf("not found: malformed dual-stream path: %v", err)
		}
		p = &pp
	}
	switch {
	case r.Method != http.MethodGet:
		return nil, http.StatusMethodNotAllowed, "method", fmt.Sprintf("method %s not allowed: a Media Streams upgrade is a GET", r.Method)
	case !ws.IsUpgrade(r):
		return nil, http.StatusUpgradeRequired, "not_websocket", "this endpoint accepts Twilio Media Streams WebSocket upgrades only (Connection: Upgrade, Upgrade: websocket)"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return nil, http.StatusBadRequest, "bad_handshake", "bad WebSocket upgrade: Sec-WebSocket-Version must be 13"
	case r.Header.Get("Sec-WebSocket-Key") == "":
		return nil, http.StatusBadRequest, "bad_handshake", "bad WebSocket upgrade: no Sec-WebSocket-Key"
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		// A body would make retrying on another adapter unsafe.
		return nil, http.StatusBadRequest, "bad_handshake", "bad WebSocket upgrade: a GET upgrade has no body"
	}
	return p, 0, "", ""
}

// conn is one upgrade being proxied.
type conn struct {
	ctx    context.Context // canceled when the handler returns, or by Shutdown
	cancel context.CancelFunc
	remote string
	pair   *pair // the dual-stream copy the path names, nil on the plain path
	tried  []string
	chosen *choice // the backend that answered 101

	mu     sync.Mutex
	client net.Conn // the hijacked client connection
	cut    bool
}

type connKey struct{}

// register admits an upgrade, or returns nil once Shutdown has begun.
func (l *LB) register(r *http.Request, p *pair) *conn {
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{ctx: ctx, cancel: cancel, remote: r.RemoteAddr, pair: p}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		cancel()
		return nil
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return c
}

// unregister ends a connection's accounting once its handler is done.
func (l *LB) unregister(c *conn) {
	c.cancel()
	if c.chosen != nil {
		// The gauge first: once ended, a pick may forget the backend's series.
		l.m.active.WithLabelValues(c.chosen.name).Dec()
		l.ended(*c.chosen)
		l.log.Debug("media stream ended", logKeyBackend, c.chosen.name, callrec.LogKeyRemote, c.remote)
	}
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// proxying records that c's upgrade was accepted by ch.
func (l *LB) proxying(c *conn, ch choice) {
	l.established(&ch)
	c.chosen = &ch
	l.m.active.WithLabelValues(ch.name).Inc()
}

// setClient keeps the hijacked client connection so Shutdown can cut it.
func (c *conn) setClient(nc net.Conn) {
	c.mu.Lock()
	c.client = nc
	cut := c.cut
	c.mu.Unlock()
	if cut {
		_ = nc.Close()
	}
}

// close cuts the connection: the dial in progress or the backend side
// (ReverseProxy closes it when the context ends) and the client side.
func (c *conn) close() {
	c.cancel()
	c.mu.Lock()
	c.cut = true
	nc := c.client
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

// responseWriter notes the client connection when ReverseProxy hijacks it,
// so Shutdown can cut it, and clears the deadlines http.Server's
// ReadTimeout/WriteTimeout set: a call lasts as long as it lasts. (net/http
// clears them itself today; the Hijacker contract does not promise it.)
type responseWriter struct {
	http.ResponseWriter
	c *conn
}

// Hijack implements http.Hijacker.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	w.c.setClient(nc)
	return nc, brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Shutdown makes the lb refuse new upgrades (503) and waits for the proxied
// connections to end. When ctx ends first it cuts the remaining ones (TCP
// close on both sides: the lb cannot speak WebSocket inside a byte stream)
// and returns ctx's error. It does not close the listener: the caller's
// http.Server.Shutdown does, which in turn does not wait for the hijacked
// connections this waits for.
func (l *LB) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	defer l.tr.CloseIdleConnections()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	n := len(l.conns)
	for c := range l.conns {
		c.close()
	}
	l.mu.Unlock()
	<-done // a cut connection's handler returns at once
	l.log.Warn("cut proxied connections at shutdown", "connections", n)
	return fmt.Errorf("lb shutdown: cut %d connections: %w", n, ctx.Err())
}

// proxyError answers an upgrade the lb could not proxy. Nothing has been
// written to the client yet.
func (l *LB) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var nb *noBackendError
	switch {
	case errors.As(err, &nb):
		l.m.unavailable.Inc()
		l.log.Error("no media adapter could take an upgrade", callrec.LogKeyRemote, r.RemoteAddr, callrec.LogKeyErr, err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no media adapter available", http.StatusServiceUnavailable)
	case r.Context().Err() != nil:
		// The client left (the answer goes nowhere) or Shutdown cut the
		// upgrade before an adapter took it.
		l.log.Debug("upgrade abandoned", callrec.LogKeyRemote, r.RemoteAddr, callrec.LogKeyErr, err)
		w.Header().Set("Connection", "close")
		http.Error(w, "media load balancer is shutting down", http.StatusServiceUnavailable)
	default:
		l.log.Warn("proxy upgrade", callrec.LogKeyRemote, r.RemoteAddr, callrec.LogKeyErr, err)
		http.Error(w, "bad gateway: the media adapter's answer could not be proxied", http.StatusBadGateway)
	}
}
