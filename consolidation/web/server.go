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
	"net"
	"net/http"
	"strings"
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
	// terminated by a proxy in front). Requests over TLS always get Secure.
	SecureCookies bool
	Log           *slog.Logger
	Now           func() time.Time
}

// Server serves the consolidation API and UI.
type Server struct {
	cfg       Config
	log       *slog.Logger
	sessions  *sessions
	playbacks playbacks
	limiter   *users.Limiter
	now       func() time.Time
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
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
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

// remoteIP is the client's address as the audit trail and the login limiter
// see it.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpio.Error(w, r, s.log, err)
}
