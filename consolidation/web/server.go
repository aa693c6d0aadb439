// Package web is consolidation's HTTP face for compliance staff: sign-in
// with sessions or API tokens, search, call details with a timeline and the
// frame accounting, playback (HTTP Range, proxied from the recorder that
// holds the audio), waveform peaks, export bundles, the audit trail and user
// management, as a JSON API and a browser UI embedded in the binary.
//
// Every search, view, playback, export, sign-in and refusal is written to
// the audit trail before the data is served: if the trail cannot be written,
// the request fails (fail closed).
package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/join"
	"callrec/consolidation/store"
	"callrec/consolidation/users"
	"callrec/internal/httpio"
)

// Audio is an open recording: its bytes (a whole WAV file as far as it is
// synced) and its index entry.
type Audio struct {
	io.ReadSeekCloser
	Size      int64
	Recording *callrec.Recording
}

// Recordings finds recordings and opens their audio wherever they are kept
// (the recorder in this process, or the recorder node an INUM names).
type Recordings interface {
	Recording(ctx context.Context, inum callrec.INUM) (*callrec.Recording, error)
	OpenAudio(ctx context.Context, inum callrec.INUM) (*Audio, error)
}

// Joined gives the joined state of an interaction (the tracker's contact).
type Joined interface {
	Get(id string) (join.State, bool, error)
}

// Config wires a Server.
type Config struct {
	Store      *store.Store
	Joined     Joined
	Users      *users.Store
	Audit      *audit.Log
	Recordings Recordings
	Limiter    *users.Limiter // nil: users.NewLimiter with defaults
	// RecorderAPI, when set, serves GET /api/recordings (the raw recorder
	// index, for admin and compliance) — only in `callrec run`.
	RecorderAPI http.Handler
	// SessionIdle ends a session unused this long [30m]; SessionMax ends
	// any session this long after sign-in [12h].
	SessionIdle, SessionMax time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests (TLS
	// terminated by a proxy in front). Requests over TLS always get Secure,
	// and so do requests a trusted proxy marks X-Forwarded-Proto: https.
	SecureCookies bool
	// TrustedProxies are the reverse proxies (see ParseTrustedProxies)
	// whose X-Forwarded-For (or Forwarded) names the client for sign-in
	// rate limits, the audit trail and logs. Empty: nobody's; the client
	// is the connection's address and those headers are ignored.
	TrustedProxies []netip.Prefix
	Log            *slog.Logger
	Now            func() time.Time
}

// Server serves the consolidation API and UI.
type Server struct {
	cfg       Config
	log       *slog.Logger
	sessions  *sessions
	playbacks playbacks
	limiter   *users.Limiter
	now       func() time.Time
	badFwd    badForwarding
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = 12 * time.Hour
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = users.NewLimiter(users.LimiterConfig{})
	}
	return &Server{cfg: cfg, log: cfg.Log.With(callrec.LogKeyComponent, "consolidation"),
		sessions: newSessions(cfg.SessionIdle, cfg.SessionMax, cfg.Now), limiter: lim, now: cfg.Now}
}

// Route is one API route: its ServeMux pattern ("METHOD /path") and who
// may use it. The OpenAPI description in docs/api/openapi.yaml documents
// exactly these (a test checks).
type Route struct {
	Pattern string
	Access  string // anyone (no sign-in), signed-in, search, audit, admin, all-calls
	handler http.Handler
}

// Routes lists the JSON API routes.
func (s *Server) Routes() []Route {
	rt := func(pattern, access string, h http.Handler) Route {
		return Route{Pattern: pattern, Access: access, handler: h}
	}
	routes := []Route{
		rt("POST /api/login", "anyone", http.HandlerFunc(s.handleLogin)),
		rt("POST /api/logout", "signed-in", s.authed(anyone, s.handleLogout)),
		rt("GET /api/session", "signed-in", s.authed(anyone, s.handleSession)),

		rt("GET /api/interactions", "search", s.authed(canSearch, s.handleSearch)),
		rt("GET /api/interactions/{id}", "search", s.authed(canSearch, s.handleInteraction)),
		rt("POST /api/interactions/{id}/export", "search", s.authed(canSearch, s.handleExport)),
		rt("GET /api/recordings/{inum}", "search", s.authed(canSearch, s.handleRecording)),
		rt("GET /api/recordings/{inum}/audio", "search", s.authed(canSearch, s.handleAudio)),
		rt("GET /api/recordings/{inum}/peaks", "search", s.authed(canSearch, s.handlePeaks)),

		rt("GET /api/audit", "audit", s.authed(canAudit, s.handleAudit)),
		rt("GET /api/audit/verify", "audit", s.authed(canAudit, s.handleAuditVerify)),

		rt("GET /api/users", "admin", s.authed(isAdmin, s.handleUsers)),
		rt("POST /api/users", "admin", s.authed(isAdmin, s.handleAddUser)),
		rt("PATCH /api/users/{name}", "admin", s.authed(isAdmin, s.handleChangeUser)),
		rt("GET /api/tokens", "admin", s.authed(isAdmin, s.handleTokens)),
		rt("POST /api/tokens", "admin", s.authed(isAdmin, s.handleAddToken)),
		rt("DELETE /api/tokens/{name}", "admin", s.authed(isAdmin, s.handleRevokeToken)),
	}
	if s.cfg.RecorderAPI != nil {
		routes = append(routes, rt("GET /api/recordings", "all-calls", s.authed(seesAll, func(w http.ResponseWriter, r *http.Request, p *principal) {
			d := map[string]string{"index": "recorder"}
			for k, v := range r.URL.Query() {
				d[k] = strings.Join(v, ",")
			}
			if _, err := s.audit(r, p, audit.Search, "", "", d); err != nil {
				s.fail(w, r, err)
				return
			}
			s.cfg.RecorderAPI.ServeHTTP(w, r)
		})))
	}
	return routes
}

// Handler returns the API and UI routes, behind cross-origin protection
// (unsafe cross-site requests are refused by their Sec-Fetch-Site/Origin
// headers) and with security headers on every response.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.Routes() {
		mux.Handle(r.Pattern, r.handler)
	}
	s.routeUI(mux)
	return s.withClient(securityHeaders(http.NewCrossOriginProtection().Handler(mux)))
}

// securityHeaders sets the headers every response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// clientKey is the context key of a request's client.
type clientKey struct{}

// withClient tells who sent each request once (see clientOf) and keeps it
// in the request's context for the handlers.
func (s *Server) withClient(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.resolveClient(r)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
	})
}

// client is who sent r: its address as the audit trail, the sign-in
// limiter and the logs see it.
func (s *Server) client(r *http.Request) client {
	if c, ok := r.Context().Value(clientKey{}).(client); ok {
		return c
	}
	return s.resolveClient(r)
}

func (s *Server) resolveClient(r *http.Request) client {
	c, err := clientOf(r, s.cfg.TrustedProxies)
	if err != nil {
		s.badFwd.warn(s.log, s.now(), c.Peer, err)
	}
	return c
}

// badForwarding throttles the warning about malformed forwarding headers
// from a trusted proxy (a misconfigured proxy would send one with every
// request): the first is logged, then at most one a minute with the count
// of those not logged.
type badForwarding struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (b *badForwarding) warn(log *slog.Logger, now time.Time, peer string, err error) {
	b.mu.Lock()
	if !b.last.IsZero() && now.Sub(b.last) < time.Minute && now.Sub(b.last) >= 0 {
		b.suppressed++
		b.mu.Unlock()
		return
	}
	n := b.suppressed
	b.last, b.suppressed = now, 0
	b.mu.Unlock()
	log.Warn("malformed forwarding header from a trusted proxy: using the connection's address as the client's",
		"proxy", peer, "suppressed", n, callrec.LogKeyErr, err)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpio.Error(w, r, s.log, err)
}
