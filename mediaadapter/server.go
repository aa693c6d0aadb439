package mediaadapter

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"callrec"
	"callrec/internal/twilio"
	"callrec/internal/ws"
)

// Config configures the media adapter.
type Config struct {
	// PublicURL is the exact wss:// URL Twilio was told to connect to; the
	// signature is computed over it, so it comes from configuration, never
	// from request headers (we may sit behind a proxy).
	PublicURL string
	// AuthToken is the Twilio auth token that signs upgrades.
	AuthToken string
	// SkipSignature accepts unsigned upgrades (development only).
	SkipSignature bool
	// ReadLimit is the largest message accepted (Twilio's are ≈ 400 bytes).
	ReadLimit int64
	// StartTimeout bounds the wait for connected+start after the upgrade.
	StartTimeout time.Duration
	// IdleTimeout bounds the silence between messages once started (Twilio
	// sends 50 messages a second per track, silence included).
	IdleTimeout time.Duration
	// MaxBadMessages closes a socket after that many rejected messages.
	MaxBadMessages int
	// NodeID names this adapter in recordings and logs.
	NodeID string
	// Path is the request path the server is mounted at [PublicURL's
	// path]. Upgrades are accepted on it and on Path/pair/<group>/<copy>
	// (the URLs of dual-stream copies, signed as PublicURL with the same
	// suffix); any other path under it is 404. Set it when a proxy in
	// front rewrites the path.
	Path string
	// DualRecording writes every stream to two recorders at once (replicas
	// 1 and 2). It needs an Opener that is also a ReplicaOpener.
	DualRecording bool
}

// Defaults for Config.
const (
	DefaultReadLimit      = 64 << 10
	DefaultStartTimeout   = 10 * time.Second
	DefaultIdleTimeout    = 10 * time.Second
	DefaultMaxBadMessages = 100
)

// Server accepts Twilio Media Streams connections.
type Server struct {
	cfg      Config
	val      *twilio.Validator
	rec      Opener
	replicas ReplicaOpener // set with DualRecording
	log      *slog.Logger
	m        *metrics
	// the signed URL is signBase + the request's path suffix + signQuery
	signBase, signQuery string

	mu       sync.Mutex
	sessions map[*session]struct{}
	closing  bool
	draining bool
	wg       sync.WaitGroup
}

// Drain makes the server refuse new upgrades (503, so a proxy tries
// another adapter) while the open streams carry on to their end.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.draining {
		s.draining = true
		s.log.Info("draining: no new streams; open ones carry on", "active", len(s.sessions))
	}
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// New returns a Server forwarding to rec. It refuses a configuration that
// would accept unsigned connections unless SkipSignature says so.
func New(cfg Config, rec Opener, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxBadMessages <= 0 {
		cfg.MaxBadMessages = DefaultMaxBadMessages
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, rec: rec, log: log.With(callrec.LogKeyComponent, "mediaadapter"), sessions: map[*session]struct{}{}}
	switch {
	case cfg.AuthToken != "":
		if cfg.PublicURL == "" {
			return nil, callrec.Errorf(callrec.EINVALID, "a public URL is needed to check Twilio signatures")
		}
		s.val = twilio.NewValidator(cfg.AuthToken)
	case !cfg.SkipSignature:
		return nil, callrec.Errorf(callrec.EINVALID, "no Twilio auth token: refusing to accept unsigned Media Streams (set one, or skip signature checks explicitly for development)")
	}
	if err := s.initURLs(); err != nil {
		return nil, err
	}
	if cfg.DualRecording {
		ro, ok := rec.(ReplicaOpener)
		if !ok {
			return nil, callrec.Errorf(callrec.EINVALID, "dual recording needs two recorders: a pool of recorders, or two recorder addresses")
		}
		s.replicas = ro
	}
	s.m = newMetrics(reg, s)
	return s, nil
}

// Active returns the number of open Media Streams sockets.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// ServeHTTP checks the signature, upgrades, and runs the stream's session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	remote := r.RemoteAddr
	suffix, urlPair, ok := s.route(r)
	if !ok {
		s.m.refused.WithLabelValues("not_found").Inc()
		http.Error(w, "no Media Streams endpoint here: use "+s.cfg.Path+" or "+s.cfg.Path+"/pair/<group>/<copy>", http.StatusNotFound)
		return
	}
	if !ws.IsUpgrade(r) {
		s.m.refused.WithLabelValues("not_websocket").Inc()
		http.Error(w, "this endpoint accepts Twilio Media Streams WebSocket upgrades only", http.StatusUpgradeRequired)
		return
	}
	if signed := s.signedURL(suffix); s.val != nil && !s.val.ValidateUpgrade(signed, r.Header.Get(twilio.SignatureHeader)) {
		s.m.refused.WithLabelValues("signature").Inc()
		reason := "invalid X-Twilio-Signature"
		if r.Header.Get(twilio.SignatureHeader) == "" {
			reason = "missing X-Twilio-Signature"
		}
		s.log.Warn("refused Media Streams upgrade", callrec.LogKeyReason, reason, callrec.LogKeyRemote, remote,
			"public_url", signed)
		http.Error(w, reason+" (signed URL must be "+signed+")", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	if s.closing || s.draining {
		s.mu.Unlock()
		s.m.refused.WithLabelValues("shutting_down").Inc()
		http.Error(w, "media adapter is shutting down or draining", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	conn, err := ws.Upgrade(w, r, ws.UpgradeOptions{ReadBufferSize: 4096, WriteBufferSize: 256, ReadLimit: s.cfg.ReadLimit})
	if err != nil {
		s.m.refused.WithLabelValues("upgrade").Inc()
		s.log.Warn("websocket upgrade failed", callrec.LogKeyRemote, remote, callrec.LogKeyErr, err)
		return
	}
	s.m.accepted.Inc()
	ss := &session{s: s, conn: conn, remote: remote, urlPair: urlPair, log: s.log.With(callrec.LogKeyRemote, remote)}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	shutting := s.closing
	s.mu.Unlock()
	if shutting {
		ss.shutdown()
	}
	ss.run()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// Shutdown closes every socket with 1001 (going away), ending each
// recording as interrupted by shutdown, and waits for the sessions to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ss := range s.sessions {
		ss.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("media sessions still open: %w", ctx.Err())
	}
}
