package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

// logRecords is a slog.Handler keeping every record, for tests that check
// what was logged.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// find returns the attributes of each record whose message starts with msg.
func (h *logRecords) find(msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if !strings.HasPrefix(r.Message, msg) {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

func mustTrust(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	ps, err := web.ParseTrustedProxies(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// loginVia posts a login with forwarding headers (name, value pairs).
func (e *testEnv) loginVia(t testing.TB, name, password string, hdr ...string) *result {
	t.Helper()
	req := e.newRequest(t, http.MethodPost, "/api/login", map[string]string{"username": name, "password": password})
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.send(t, req)
}

// remoteLine is what TestTrustedProxy compares of an audit entry.
type remoteLine struct {
	Type    audit.EventType
	Actor   string
	Reason  string
	Remote  string
	Details map[string]string
}

func remoteLines(es []audit.Entry) []remoteLine {
	var out []remoteLine
	for _, e := range es {
		out = append(out, remoteLine{Type: e.Type, Actor: e.Actor, Reason: e.Reason, Remote: e.Remote, Details: e.Details})
	}
	return out
}

// TestTrustedProxy signs two people in through the same proxy (the test
// client on 127.0.0.1), told apart only by X-Forwarded-For. When the proxy
// is trusted, the sign-in limit per IP locks one and not the other, and
// the audit trail and logs name each by the forwarded address; otherwise
// the headers are ignored and both share the connection's address.
func TestTrustedProxy(t *testing.T) {
	const alice, bob = "198.51.100.1", "2001:db8:2::7"
	tests := []struct {
		name    string
		trusted string
		behind  bool // the test client is a trusted proxy
	}{
		{name: "trusted proxy", trusted: "10.0.0.0/8, 127.0.0.1", behind: true},
		{name: "untrusted peer", trusted: "192.0.2.0/24, ::1"},
		{name: "no trusted proxies", trusted: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			limClock := &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
			lim := users.NewLimiter(users.LimiterConfig{UserFailures: 100, IPFailures: 2, Lock: 15 * time.Minute, Now: limClock.Now})
			logs := &logRecords{}
			e := newTestEnv(t, func(c *web.Config) {
				c.Limiter = lim
				c.TrustedProxies = mustTrust(t, tt.trusted)
				c.Log = slog.New(logs)
			})
			mark := e.auditMark(t)

			// Alice spends her IP's failures (on east's name), then is
			// locked out even with comp's right password.
			for range 2 {
				e.loginVia(t, "east", "not the password at all", "X-Forwarded-For", alice).want(t, http.StatusUnauthorized)
			}
			e.loginVia(t, "comp", testPassword, "X-Forwarded-For", alice).want(t, http.StatusTooManyRequests)

			// Bob, behind the same proxy, signs in unless the lock hit the proxy.
			r := e.loginVia(t, "comp", testPassword, "X-Forwarded-For", bob, "X-Forwarded-Proto", "https")
			proxy := map[string]string{"proxy": "127.0.0.1"}
			aliceAt, bobAt, aliceD, okD := alice, bob, proxy, map[string]string{"method": "password", "proxy": "127.0.0.1"}
			if !tt.behind {
				aliceAt, bobAt, aliceD, okD = "127.0.0.1", "127.0.0.1", nil, map[string]string{"method": "password"}
			}
			want := []remoteLine{
				{Type: audit.LoginFailed, Actor: "east", Reason: "invalid username or password", Remote: aliceAt, Details: aliceD},
				{Type: audit.LoginFailed, Actor: "east", Reason: "invalid username or password", Remote: aliceAt, Details: aliceD},
				{Type: audit.LoginFailed, Actor: "comp", Reason: "rate_limited", Remote: aliceAt, Details: aliceD},
			}
			if tt.behind {
				r.want(t, http.StatusOK)
				want = append(want, remoteLine{Type: audit.LoginOK, Actor: "comp", Remote: bobAt, Details: okD})
			} else {
				r.want(t, http.StatusTooManyRequests) // one attacker locks out everyone behind the proxy
				want = append(want, remoteLine{Type: audit.LoginFailed, Actor: "comp", Reason: "rate_limited", Remote: bobAt, Details: aliceD})
			}
			if diff := cmp.Diff(want, remoteLines(e.auditSince(t, mark))); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}

			failed := logs.find("sign-in failed")
			if len(failed) != 2 || failed[0]["remote"] != aliceAt || (failed[0]["proxy"] == "127.0.0.1") != tt.behind {
				t.Errorf("sign-in failure logs = %v, want two with remote %s (proxy 127.0.0.1: %v)", failed, aliceAt, tt.behind)
			}
			if !tt.behind {
				return
			}
			signedIn := logs.find("signed in")
			if len(signedIn) != 1 || signedIn[0]["remote"] != bob || signedIn[0]["proxy"] != "127.0.0.1" || signedIn[0]["user"] != "comp" {
				t.Errorf("sign-in logs = %v, want comp from %s through 127.0.0.1", signedIn, bob)
			}

			// The session's later requests are audited from where they come.
			var body struct {
				CSRFToken string `json:"csrf_token"`
			}
			r.decode(t, &body)
			c := &client{e: e, name: "comp", cookie: sessionCookie(t, r), csrf: body.CSRFToken}
			mark = e.auditMark(t)
			c.get(t, "/api/interactions", "X-Forwarded-For", "203.0.113.50, "+bob).want(t, http.StatusOK)
			c.get(t, "/api/interactions", "X-Forwarded-For", bob+", 10.1.2.3").want(t, http.StatusOK) // through a second, trusted proxy
			got := e.auditSince(t, mark)
			if len(got) != 2 || got[0].Remote != bob || got[1].Remote != bob || got[1].Details["proxy"] != "127.0.0.1" {
				t.Errorf("search audit = %+v, want two from %s through 127.0.0.1", remoteLines(got), bob)
			}
		})
	}
}

func sessionCookie(t testing.TB, r *result) *http.Cookie {
	t.Helper()
	for _, c := range r.resp.Cookies() {
		if c.Name == web.CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", web.CookieName, r.Header["Set-Cookie"])
	return nil
}

// TestTrustedProxyHTTPS: a trusted proxy's X-Forwarded-Proto: https marks
// the session cookie Secure; an untrusted peer's does not; neither relaxes
// cross-origin protection.
func TestTrustedProxyHTTPS(t *testing.T) {
	tests := []struct {
		name       string
		trusted    string
		proto      string
		wantSecure bool
	}{
		{name: "trusted, https", trusted: "127.0.0.0/8", proto: "https", wantSecure: true},
		{name: "trusted, http", trusted: "127.0.0.0/8", proto: "http"},
		{name: "untrusted, https", trusted: "10.0.0.0/8", proto: "https"},
		{name: "none, https", proto: "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, func(c *web.Config) { c.TrustedProxies = mustTrust(t, tt.trusted) })
			r := e.loginVia(t, "comp", testPassword, "X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", tt.proto).want(t, http.StatusOK)
			ck := sessionCookie(t, r)
			if ck.Secure != tt.wantSecure {
				t.Errorf("cookie Secure = %v, want %v", ck.Secure, tt.wantSecure)
			}
			var body struct {
				CSRFToken string `json:"csrf_token"`
			}
			r.decode(t, &body)
			c := &client{e: e, name: "comp", cookie: ck, csrf: body.CSRFToken}
			// A cross-site sign-out, even with the session's CSRF token, is refused.
			c.do(t, http.MethodPost, "/api/logout", nil, "X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", tt.proto,
				"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example").want(t, http.StatusForbidden)
			c.get(t, "/api/session").want(t, http.StatusOK)

			r = c.do(t, http.MethodPost, "/api/logout", nil, "X-Forwarded-For", "198.51.100.1", "X-Forwarded-Proto", tt.proto).
				want(t, http.StatusNoContent)
			for _, ck := range r.resp.Cookies() {
				if ck.Name == web.CookieName && ck.Secure != tt.wantSecure {
					t.Errorf("sign-out cookie Secure = %v, want %v", ck.Secure, tt.wantSecure)
				}
			}
		})
	}
}

// TestTrustedProxyMalformedHeader: a malformed X-Forwarded-For from a
// trusted proxy falls back to the connection's address, and the warning
// is logged once a minute, not once a request.
func TestTrustedProxyMalformedHeader(t *testing.T) {
	t.Parallel()
	logs := &logRecords{}
	e := newTestEnv(t, func(c *web.Config) {
		c.TrustedProxies = mustTrust(t, "127.0.0.1")
		c.Log = slog.New(logs)
	})
	mark := e.auditMark(t)
	for _, xff := range []string{"198.51.100.1, not-an-address", "[::1", "198.51.100.1,,127.0.0.1"} {
		e.loginVia(t, "east", "not the password at all", "X-Forwarded-For", xff).want(t, http.StatusUnauthorized)
	}
	for _, en := range e.auditSince(t, mark) {
		if en.Remote != "127.0.0.1" || en.Details["proxy"] != "" {
			t.Errorf("audit remote %q details %v, want 127.0.0.1 and no proxy", en.Remote, en.Details)
		}
	}
	const msg = "malformed forwarding header"
	if got := logs.find(msg); len(got) != 1 || got[0]["proxy"] != "127.0.0.1" || !strings.Contains(got[0]["err"], "not-an-address") {
		t.Errorf("warnings = %v, want one naming the proxy and the bad entry", got)
	}
	e.clock.Advance(time.Minute)
	e.loginVia(t, "east", "not the password at all", "X-Forwarded-For", "nope").want(t, http.StatusUnauthorized)
	if got := logs.find(msg); len(got) != 2 || got[1]["suppressed"] != "2" {
		t.Errorf("warnings = %v, want a second one a minute later counting 2 not logged", got)
	}
}
