package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/internal/httpio"
)

// CookieName is the session cookie.
const CookieName = "callrec_session"

// CSRFHeader carries a session's CSRF token on every unsafe request made
// with the session cookie.
const CSRFHeader = "X-CSRF-Token"

// session is one signed-in browser. Sessions live in memory: a restart
// signs everyone out.
type session struct {
	key     string // SHA-256 of the cookie value
	user    string
	csrf    string
	created time.Time
	seen    time.Time
}

type sessions struct {
	mu        sync.Mutex
	m         map[string]*session
	idle, max time.Duration
	now       func() time.Time
}

func newSessions(idle, max time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, idle: idle, max: max, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return string(sum[:])
}

// create starts a session for user and returns the cookie value.
func (ss *sessions) create(user string) (string, *session) {
	now := ss.now()
	cookie := randomToken()
	s := &session{key: sessionKey(cookie), user: user, csrf: randomToken(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, x := range ss.m { // expired sessions go when new ones come
		if ss.expired(x, now) {
			delete(ss.m, k)
		}
	}
	ss.m[s.key] = s
	return cookie, s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) > ss.idle || now.Sub(s.created) > ss.max
}

// get returns the live session of a cookie value and marks it used.
func (ss *sessions) get(cookie string) (*session, bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[sessionKey(cookie)]
	if s == nil {
		return nil, false
	}
	if ss.expired(s, now) {
		delete(ss.m, s.key)
		return nil, false
	}
	s.seen = now
	return s, true
}

// endUser ends every session of a user (password, role or state changed).
func (ss *sessions) endUser(user string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, x := range ss.m {
		if x.user == user {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) delete(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.key)
}

// principal is who makes a request.
type principal struct {
	user users.User
	sess *session // nil for an API token
}

// Access rules.
func anyone(users.User) bool      { return true }
func canSearch(u users.User) bool { return u.CanSearch() }
func canAudit(u users.User) bool  { return u.CanAudit() }
func isAdmin(u users.User) bool   { return !u.Disabled && u.Role == users.Admin }
func seesAll(u users.User) bool {
	return !u.Disabled && (u.Role == users.Admin || u.Role == users.Compliance)
}

type handlerFunc func(http.ResponseWriter, *http.Request, *principal)

// authed authenticates a request (API token in Authorization: Bearer, or
// the session cookie plus, on unsafe methods, the CSRF header), re-reads the
// user so role changes and disabling apply at once, and checks allow.
// Refusals of a known user are audited.
func (s *Server) authed(allow func(users.User) bool, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !allow(p.user) {
			reason := fmt.Sprintf("role %s may not %s %s", p.user.Role, r.Method, r.URL.Path)
			s.deny(w, r, p, r.URL.Path, reason)
			return
		}
		h(w, r, p)
	})
}

func (s *Server) authenticate(r *http.Request) (*principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, callrec.Errorf(callrec.EUNAUTHENTICATED, "Authorization: want a Bearer token")
		}
		u, err := s.cfg.Users.AuthenticateToken(ctx, strings.TrimSpace(tok))
		if err != nil {
			if callrec.ErrorCode(err) == callrec.EFORBIDDEN {
				return nil, callrec.Errorf(callrec.EUNAUTHENTICATED, "invalid API token")
			}
			return nil, err
		}
		return &principal{user: u}, nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil, callrec.Errorf(callrec.EUNAUTHENTICATED, "sign in first")
	}
	sess, ok := s.sessions.get(c.Value)
	if !ok {
		return nil, callrec.Errorf(callrec.EUNAUTHENTICATED, "session expired: sign in again")
	}
	u, err := s.cfg.Users.Get(ctx, sess.user)
	if err != nil || u.Disabled {
		s.sessions.delete(sess)
		return nil, callrec.Errorf(callrec.EUNAUTHENTICATED, "session ended: sign in again")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.csrf)) != 1 {
			return nil, callrec.Errorf(callrec.EFORBIDDEN, "missing or wrong %s header", CSRFHeader)
		}
	}
	return &principal{user: u, sess: sess}, nil
}

// auditProxyKey is the audit detail naming the trusted proxy a request came
// through when Remote is the address that proxy forwarded.
const auditProxyKey = "proxy"

// record appends an audit entry for a request. An error means the action
// must not go ahead.
func (s *Server) record(r *http.Request, actor, role string, typ audit.EventType, target, reason string, details map[string]string) (audit.Entry, error) {
	c := s.client(r)
	if c.Forwarded { // the trail keeps which proxy vouched for the address
		details = maps.Clone(details)
		if details == nil {
			details = map[string]string{}
		}
		details[auditProxyKey] = c.Peer
	}
	e, err := s.cfg.Audit.Append(r.Context(), audit.Entry{Time: s.now().UTC(), Type: typ, Actor: actor, Role: role,
		Remote: c.IP, Target: target, Reason: reason, Details: details})
	if err != nil {
		s.log.Error("audit trail write failed: refusing the request", "type", typ, "actor", actor, callrec.LogKeyErr, err)
		return e, callrec.Errorf(callrec.EUNAVAILABLE, "the audit trail cannot be written; the request was not served")
	}
	return e, nil
}

func (s *Server) audit(r *http.Request, p *principal, typ audit.EventType, target, reason string, details map[string]string) (audit.Entry, error) {
	return s.record(r, p.user.Name, string(p.user.Role), typ, target, reason, details)
}

// deny audits a refusal and answers 403.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, p *principal, target, reason string) {
	s.denyWith(w, r, p, target, reason, nil)
}

// denyWith is deny with more details for the audit entry.
func (s *Server) denyWith(w http.ResponseWriter, r *http.Request, p *principal, target, reason string, details map[string]string) {
	d := map[string]string{"method": r.Method, "path": r.URL.Path}
	maps.Copy(d, details)
	if _, err := s.audit(r, p, audit.AccessDenied, target, reason, d); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Warn("access denied", "user", p.user.Name, "role", p.user.Role, "target", target, callrec.LogKeyReason, reason)
	s.fail(w, r, callrec.Errorf(callrec.EFORBIDDEN, "not allowed: %s", reason))
}

// sessionBody is the answer to login and GET /api/session.
type sessionBody struct {
	User      userBody `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
}

type userBody struct {
	Name     string     `json:"name"`
	Role     users.Role `json:"role"`
	Teams    []string   `json:"teams,omitempty"`
	Disabled bool       `json:"disabled,omitempty"`
	Created  time.Time  `json:"created,omitzero"`
}

func userOf(u users.User) userBody {
	return userBody{Name: u.Name, Role: u.Role, Teams: u.Teams, Disabled: u.Disabled, Created: u.Created}
}

// decodeJSON reads a small JSON request body into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return callrec.Errorf(callrec.EINVALID, "request body: %v", err)
	}
	return nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	c := s.client(r)
	ip := c.IP
	if ok, wait := s.limiter.Allow(body.Username, ip); !ok {
		if _, err := s.record(r, body.Username, "", audit.LoginFailed, body.Username, "rate_limited", nil); err != nil {
			s.fail(w, r, err)
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		s.fail(w, r, callrec.Errorf(callrec.ETOOMANY, "too many failed sign-ins: try again in %s", wait.Round(time.Second)))
		return
	}
	u, err := s.cfg.Users.Authenticate(r.Context(), body.Username, body.Password)
	if err != nil {
		if callrec.ErrorCode(err) != callrec.EFORBIDDEN {
			s.fail(w, r, err)
			return
		}
		s.limiter.Failed(body.Username, ip)
		if _, err := s.record(r, body.Username, "", audit.LoginFailed, body.Username, "invalid username or password", nil); err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Warn("sign-in failed", append([]any{"user", body.Username}, c.logAttrs()...)...)
		s.fail(w, r, callrec.Errorf(callrec.EUNAUTHENTICATED, "invalid username or password"))
		return
	}
	if _, err := s.record(r, u.Name, string(u.Role), audit.LoginOK, u.Name, "", map[string]string{"method": "password"}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.limiter.Succeeded(body.Username, ip)
	cookie, sess := s.sessions.create(u.Name)
	s.log.Info("signed in", append([]any{"user", u.Name, "role", u.Role}, c.logAttrs()...)...)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: cookie, Path: "/", HttpOnly: true,
		Secure: c.TLS || s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
		MaxAge: int(s.cfg.SessionMax.Seconds())})
	httpio.JSON(w, http.StatusOK, sessionBody{User: userOf(u), CSRFToken: sess.csrf})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.sess == nil {
		s.fail(w, r, callrec.Errorf(callrec.EINVALID, "API tokens do not sign out: revoke the token instead"))
		return
	}
	s.sessions.delete(p.sess)
	if _, err := s.audit(r, p, audit.Logout, p.user.Name, "", nil); err != nil {
		s.log.Error("audit logout", callrec.LogKeyErr, err) // the session is gone either way
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true,
		Secure: s.client(r).TLS || s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request, p *principal) {
	body := sessionBody{User: userOf(p.user)}
	if p.sess != nil {
		body.CSRFToken = p.sess.csrf
	}
	httpio.JSON(w, http.StatusOK, body)
}
