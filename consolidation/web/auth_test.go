package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
	"callrec/consolidation/web"
)

func TestLoginSetsSessionCookie(t *testing.T) {
	tests := []struct {
		name       string
		tls        bool
		secure     bool // Config.SecureCookies
		wantSecure bool
	}{
		{name: "plain HTTP", wantSecure: false},
		{name: "plain HTTP behind a TLS proxy", secure: true, wantSecure: true},
		{name: "TLS", tls: true, wantSecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.tls, func(c *web.Config) { c.SecureCookies = tt.secure })
			mark := e.auditMark(t)
			r := e.loginResult(t, "comp", testPassword).want(t, http.StatusOK)

			var body struct {
				User struct {
					Name string     `json:"name"`
					Role users.Role `json:"role"`
				} `json:"user"`
				CSRFToken string `json:"csrf_token"`
			}
			r.decode(t, &body)
			if body.User.Name != "comp" || body.User.Role != users.Compliance || len(body.CSRFToken) < 32 {
				t.Errorf("login body = %+v, want user comp (compliance) and a CSRF token", body)
			}
			var ck *http.Cookie
			for _, c := range r.resp.Cookies() {
				if c.Name == web.CookieName {
					ck = c
				}
			}
			if ck == nil {
				t.Fatalf("no %s cookie in %v", web.CookieName, r.Header["Set-Cookie"])
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure != tt.wantSecure {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Strict, /, Secure=%v",
					ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure, tt.wantSecure)
			}
			if len(ck.Value) < 32 {
				t.Errorf("cookie value %q is too short to be unguessable", ck.Value)
			}
			if got, want := r.Header.Get("Strict-Transport-Security") != "", tt.tls; got != want {
				t.Errorf("HSTS header present = %v, want %v", got, want)
			}

			// The cookie signs the browser in; the session answers the same CSRF token.
			c := &client{e: e, name: "comp", cookie: ck, csrf: body.CSRFToken}
			var sess struct {
				User      struct{ Name string } `json:"user"`
				CSRFToken string                `json:"csrf_token"`
			}
			c.get(t, "/api/session").want(t, http.StatusOK).decode(t, &sess)
			if sess.User.Name != "comp" || sess.CSRFToken != body.CSRFToken {
				t.Errorf("session = %+v, want comp with the login's CSRF token", sess)
			}

			want := []auditLine{{Type: audit.LoginOK, Actor: "comp", Role: "compliance", Target: "comp", Details: map[string]string{"method": "password"}}}
			got := e.auditSince(t, mark)
			if diff := cmp.Diff(want, lines(got)); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}
			if len(got) == 1 && got[0].Remote != "127.0.0.1" {
				t.Errorf("audit remote = %q, want 127.0.0.1", got[0].Remote)
			}
		})
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	admin.do(t, http.MethodPatch, "/api/users/west", map[string]any{"disabled": true}).want(t, http.StatusOK)

	mark := e.auditMark(t)
	wrong := e.loginResult(t, "east", "wrong password, long enough").want(t, http.StatusUnauthorized)
	unknown := e.loginResult(t, "nobody", testPassword).want(t, http.StatusUnauthorized)
	disabled := e.loginResult(t, "west", testPassword).want(t, http.StatusUnauthorized)
	for name, r := range map[string]*result{"unknown user": unknown, "disabled user": disabled} {
		if string(r.Body) != string(wrong.Body) {
			t.Errorf("%s answers %s, wrong password answers %s: they must look the same", name, r.Body, wrong.Body)
		}
	}
	for _, r := range []*result{wrong, unknown, disabled} {
		if r.errorCode() != callrec.EUNAUTHENTICATED {
			t.Errorf("error code %q, want %q", r.errorCode(), callrec.EUNAUTHENTICATED)
		}
		if len(r.resp.Cookies()) != 0 {
			t.Errorf("failed login set cookies %v", r.Header["Set-Cookie"])
		}
	}
	const why = "invalid username or password"
	want := []auditLine{
		{Type: audit.LoginFailed, Actor: "east", Target: "east", Reason: why},
		{Type: audit.LoginFailed, Actor: "nobody", Target: "nobody", Reason: why},
		{Type: audit.LoginFailed, Actor: "west", Target: "west", Reason: why},
	}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// A malformed body is a client error, not a failed login.
	mark = e.auditMark(t)
	r := e.send(t, e.newRequest(t, http.MethodPost, "/api/login", `{"username": "east", "password": `)).want(t, http.StatusBadRequest)
	if r.errorCode() != callrec.EINVALID {
		t.Errorf("malformed login: code %q, want %q", r.errorCode(), callrec.EINVALID)
	}
	e.send(t, e.newRequest(t, http.MethodPost, "/api/login", map[string]string{"username": "east", "password": testPassword, "otp": "1"})).
		want(t, http.StatusBadRequest)
	if got := e.auditSince(t, mark); len(got) != 0 {
		t.Errorf("malformed logins audited: %v", lines(got))
	}
}

func TestLoginRateLimited(t *testing.T) {
	t.Parallel()
	limClock := &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	lim := users.NewLimiter(users.LimiterConfig{UserFailures: 2, Lock: 15 * time.Minute, Now: limClock.Now})
	e := newTestEnv(t, func(c *web.Config) { c.Limiter = lim })

	mark := e.auditMark(t)
	for range 2 {
		e.loginResult(t, "east", "not the password at all").want(t, http.StatusUnauthorized)
	}
	// Locked: even the right password is refused, with the wait.
	r := e.loginResult(t, "east", testPassword).want(t, http.StatusTooManyRequests)
	if r.errorCode() != callrec.ETOOMANY {
		t.Errorf("code %q, want %q", r.errorCode(), callrec.ETOOMANY)
	}
	if got := r.Header.Get("Retry-After"); got != "900" {
		t.Errorf("Retry-After = %q, want 900 (15 minutes)", got)
	}
	if len(r.resp.Cookies()) != 0 {
		t.Errorf("rate-limited login set cookies %v", r.Header["Set-Cookie"])
	}
	got := lines(e.auditSince(t, mark))
	want := auditLine{Type: audit.LoginFailed, Actor: "east", Target: "east", Reason: "rate_limited"}
	if len(got) != 3 || !cmp.Equal(got[2], want) {
		t.Errorf("audit = %+v, want two failures then %+v", got, want)
	}

	limClock.Advance(15*time.Minute + time.Second)
	e.login(t, "east")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	c := e.login(t, "east")
	other := e.login(t, "east") // a second browser of the same user
	mark := e.auditMark(t)

	r := c.do(t, http.MethodPost, "/api/logout", nil).want(t, http.StatusNoContent)
	cleared := false
	for _, ck := range r.resp.Cookies() {
		if ck.Name == web.CookieName && ck.MaxAge < 0 && ck.Value == "" {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", r.Header["Set-Cookie"])
	}
	c.get(t, "/api/session").want(t, http.StatusUnauthorized)
	c.get(t, "/api/interactions").want(t, http.StatusUnauthorized)
	other.get(t, "/api/session").want(t, http.StatusOK) // only that session ended

	want := []auditLine{{Type: audit.Logout, Actor: "east", Role: "supervisor", Target: "east"}}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// API tokens are revoked, not signed out.
	tok := e.tokenClient(t, "bot", users.Compliance)
	tok.do(t, http.MethodPost, "/api/logout", nil).want(t, http.StatusBadRequest)
	tok.get(t, "/api/session").want(t, http.StatusOK)
}

func TestSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t) // SessionIdle defaults to 30 minutes
	c := e.login(t, "comp")
	for range 3 { // use keeps it alive past the idle time
		e.clock.Advance(29 * time.Minute)
		c.get(t, "/api/session").want(t, http.StatusOK)
	}
	e.clock.Advance(30*time.Minute + time.Second)
	r := c.get(t, "/api/session").want(t, http.StatusUnauthorized)
	if r.errorCode() != callrec.EUNAUTHENTICATED {
		t.Errorf("code %q, want %q", r.errorCode(), callrec.EUNAUTHENTICATED)
	}
	e.clock.Advance(-time.Hour) // gone for good, even if the clock steps back
	c.get(t, "/api/session").want(t, http.StatusUnauthorized)
}

func TestSessionMaxAge(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, func(c *web.Config) { c.SessionIdle, c.SessionMax = 30*time.Minute, time.Hour })
	c := e.login(t, "comp")
	for range 3 {
		e.clock.Advance(20 * time.Minute)
		c.get(t, "/api/session").want(t, http.StatusOK)
	}
	e.clock.Advance(time.Minute) // 61 minutes after sign-in, though used a minute ago
	c.get(t, "/api/session").want(t, http.StatusUnauthorized)
}

func TestAuthenticationRequired(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	inum := e.inumOf(t, "east1")
	paths := []string{"/api/session", "/api/interactions", "/api/interactions/WTeast1", "/api/recordings/" + string(inum),
		"/api/recordings/" + string(inum) + "/audio", "/api/recordings/" + string(inum) + "/peaks", "/api/audit", "/api/users", "/api/tokens"}
	creds := map[string][]string{
		"no credentials":       nil,
		"basic auth":           {"Authorization", "Basic YWRtaW46eA=="},
		"malformed token":      {"Authorization", "Bearer not-a-token"},
		"unknown token":        {"Authorization", "Bearer " + strings.Repeat("A", 43)},
		"forged session":       {"Cookie", web.CookieName + "=" + strings.Repeat("x", 43)},
		"empty session cookie": {"Cookie", web.CookieName + "="},
	}
	mark := e.auditMark(t)
	for name, hdr := range creds {
		for _, p := range paths {
			r := e.anon().get(t, p, hdr...)
			if r.Status != http.StatusUnauthorized || r.errorCode() != callrec.EUNAUTHENTICATED {
				t.Errorf("%s: GET %s = %s, want 401 unauthenticated", name, p, r)
			}
		}
	}
	if got := e.auditSince(t, mark); len(got) != 0 {
		t.Errorf("anonymous requests audited: %v", lines(got))
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.login(t, "admin")
	second := e.login(t, "admin") // another session: another CSRF token

	created := func(name string) bool {
		list, err := e.users.ListTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range list {
			if u.Name == name {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name   string
		header []string // X-CSRF-Token value; nil: none
		want   int
	}{
		{"no header", nil, http.StatusForbidden},
		{"empty header", []string{""}, http.StatusForbidden},
		{"wrong token", []string{"x" + admin.csrf[1:]}, http.StatusForbidden},
		{"another session's token", []string{second.csrf}, http.StatusForbidden},
		{"right token", []string{admin.csrf}, http.StatusCreated},
	}
	for i, tt := range tests {
		name := "tok" + string(rune('a'+i))
		req := admin.request(t, http.MethodPost, "/api/tokens", map[string]any{"name": name, "role": "compliance"})
		req.Header.Del(web.CSRFHeader)
		if tt.header != nil {
			req.Header.Set(web.CSRFHeader, tt.header[0])
		}
		r := e.send(t, req)
		if r.Status != tt.want {
			t.Errorf("%s: POST /api/tokens = %s, want %d", tt.name, r, tt.want)
		}
		if got := created(name); got != (tt.want == http.StatusCreated) {
			t.Errorf("%s: token created = %v", tt.name, got)
		}
	}
	// Other unsafe methods too.
	for _, m := range []string{http.MethodPatch, http.MethodDelete} {
		req := admin.request(t, m, "/api/users/east", map[string]any{"disabled": true})
		if m == http.MethodDelete {
			req = admin.request(t, m, "/api/tokens/toke", nil)
		}
		req.Header.Del(web.CSRFHeader)
		if r := e.send(t, req); r.Status != http.StatusForbidden {
			t.Errorf("%s without CSRF header = %s, want 403", m, r)
		}
	}
	if u, _ := e.users.Get(context.Background(), "east"); u.Disabled {
		t.Error("PATCH without CSRF header disabled east")
	}
	if !created("toke") {
		t.Fatal("token toke missing")
	}
	if tok, err := e.users.ListTokens(context.Background()); err == nil {
		for _, u := range tok {
			if u.Name == "toke" && u.Disabled {
				t.Error("DELETE without CSRF header revoked toke")
			}
		}
	}

	// A bearer token is not sent by browsers on their own: no CSRF header needed.
	bot := e.tokenClient(t, "admin-bot", users.Admin)
	bot.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": "by-bot", "role": "auditor"}).want(t, http.StatusCreated)
}

func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.login(t, "admin")
	bot := e.tokenClient(t, "admin-bot", users.Admin)

	tests := []struct {
		name string
		c    *client
		hdr  []string
		want int
	}{
		{"session, cross-site fetch", admin, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"session, same-site other origin", admin, []string{"Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{"session, foreign Origin", admin, []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"token, cross-site fetch", bot, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"session, same-origin fetch", admin, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusCreated},
		{"session, own Origin", admin, []string{"Origin", e.srv.URL}, http.StatusCreated},
	}
	for i, tt := range tests {
		name := "xo" + string(rune('a'+i))
		r := tt.c.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": name, "role": "auditor"}, tt.hdr...)
		if r.Status != tt.want {
			t.Errorf("%s: POST /api/tokens = %s, want %d", tt.name, r, tt.want)
		}
		list, err := e.users.ListTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		made := false
		for _, u := range list {
			made = made || u.Name == name
		}
		if made != (tt.want == http.StatusCreated) {
			t.Errorf("%s: token created = %v", tt.name, made)
		}
	}

	// Login CSRF: a cross-site form cannot sign the browser in.
	mark := e.auditMark(t)
	req := e.newRequest(t, http.MethodPost, "/api/login", map[string]string{"username": "east", "password": testPassword})
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := e.send(t, req); r.Status != http.StatusForbidden || len(r.resp.Cookies()) != 0 {
		t.Errorf("cross-site login = %s, cookies %v; want 403 and none", r, r.Header["Set-Cookie"])
	}
	// A cross-site logout does not end the session.
	admin.do(t, http.MethodPost, "/api/logout", nil, "Sec-Fetch-Site", "cross-site").want(t, http.StatusForbidden)
	admin.get(t, "/api/session").want(t, http.StatusOK)
	if got := e.auditSince(t, mark); len(got) != 0 {
		t.Errorf("refused cross-site requests acted: %v", lines(got))
	}
	// Safe methods are not affected (a cross-site GET of a page is fine).
	e.anon().get(t, "/login", "Sec-Fetch-Site", "cross-site").want(t, http.StatusOK)
}

func TestAuditorCannotSearch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	aud := e.login(t, "aud")
	inum := e.inumOf(t, "east1")

	mark := e.auditMark(t)
	paths := []string{"/api/interactions", "/api/interactions/WTeast1", "/api/recordings/" + string(inum) + "/audio",
		"/api/recordings/" + string(inum) + "/peaks", "/api/users"}
	for _, p := range paths {
		r := aud.get(t, p).want(t, http.StatusForbidden)
		if r.errorCode() != callrec.EFORBIDDEN {
			t.Errorf("GET %s: code %q, want %q", p, r.errorCode(), callrec.EFORBIDDEN)
		}
	}
	aud.do(t, http.MethodPost, "/api/interactions/WTeast1/export", map[string]string{"reason": "curious"}).want(t, http.StatusForbidden)
	got := e.auditSince(t, mark)
	if len(got) != len(paths)+1 {
		t.Fatalf("audit = %v, want one access_denied per refusal", lines(got))
	}
	for i, p := range append(paths, "/api/interactions/WTeast1/export") {
		g := got[i]
		method := http.MethodGet
		if i == len(paths) {
			method = http.MethodPost
		}
		want := auditLine{Type: audit.AccessDenied, Actor: "aud", Role: "auditor", Target: p, Reason: g.Reason,
			Details: map[string]string{"method": method, "path": p}}
		if diff := cmp.Diff(want, lines(got[i : i+1])[0]); diff != "" || !strings.Contains(g.Reason, "auditor") {
			t.Errorf("entry for %s (-want +got):\n%s reason %q", p, diff, g.Reason)
		}
	}

	// The audit trail is what an auditor reads.
	var list struct {
		Items []audit.Entry `json:"items"`
		Total int           `json:"total"`
	}
	aud.get(t, "/api/audit?type=access_denied&actor=aud").want(t, http.StatusOK).decode(t, &list)
	if list.Total != len(paths)+1 || len(list.Items) != list.Total {
		t.Errorf("GET /api/audit: total %d, %d items; want %d", list.Total, len(list.Items), len(paths)+1)
	}
	aud.get(t, "/api/audit/verify").want(t, http.StatusOK)
}

func TestSupervisorScope(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	east := e.login(t, "east")

	ids, total := searchIDs(t, east, "")
	if want := []string{"WTmixed", "WTeast2", "WTeast1"}; !cmp.Equal(ids, want) || total != 3 {
		t.Errorf("east's search = %v (total %d), want %v (total 3)", ids, total, want)
	}
	ids, total = searchIDs(t, east, "?queue=sales")
	if want := []string{"WTeast1"}; !cmp.Equal(ids, want) || total != 1 {
		t.Errorf("east's search of queue sales = %v (total %d), want %v (total 1): west1 is in sales too", ids, total, want)
	}
	ids, total = searchIDs(t, east, "?inum="+string(e.inumOf(t, "west1")))
	if len(ids) != 0 || total != 0 {
		t.Errorf("east's search for west1's INUM = %v (total %d), want nothing", ids, total)
	}
	for _, id := range []string{"WTeast1", "WTmixed"} {
		east.get(t, "/api/interactions/"+id).want(t, http.StatusOK)
	}
	east.get(t, "/api/recordings/"+string(e.inumOf(t, "mixed"))+"/audio").want(t, http.StatusOK)

	west := string(e.inumOf(t, "west1"))
	tests := []struct {
		method, path, target string
		body                 any
	}{
		{http.MethodGet, "/api/interactions/WTwest1", "WTwest1", nil},
		{http.MethodPost, "/api/interactions/WTwest1/export", "WTwest1", map[string]string{"reason": "curious"}},
		{http.MethodGet, "/api/recordings/" + west, west, nil},
		{http.MethodGet, "/api/recordings/" + west + "/audio", west, nil},
		{http.MethodGet, "/api/recordings/" + west + "/audio", west, nil}, // with a Range below
		{http.MethodGet, "/api/recordings/" + west + "/peaks", west, nil},
	}
	opens := e.recs.opens.Load()
	for i, tt := range tests {
		mark := e.auditMark(t)
		var hdr []string
		if i == 4 {
			hdr = []string{"Range", "bytes=100-"}
		}
		r := east.do(t, tt.method, tt.path, tt.body, hdr...).want(t, http.StatusForbidden)
		if r.errorCode() != callrec.EFORBIDDEN {
			t.Errorf("%s %s: code %q", tt.method, tt.path, r.errorCode())
		}
		got := e.auditSince(t, mark)
		if len(got) != 1 || got[0].Type != audit.AccessDenied || got[0].Actor != "east" || got[0].Role != "supervisor" || got[0].Target != tt.target {
			t.Errorf("%s %s audited %+v, want one access_denied by east (supervisor) on %s", tt.method, tt.path, lines(got), tt.target)
		}
	}
	if n := e.recs.opens.Load() - opens; n != 0 {
		t.Errorf("west's audio was opened %d times for refused requests", n)
	}

	// A recording no call holds yet is for admin and compliance only.
	orphan := mustINUM(t, 99)
	file := makeWAV(100, 99)
	e.recs.put(finishedRecording(orphan, t0, file), file)
	east.get(t, "/api/recordings/"+string(orphan)+"/audio").want(t, http.StatusForbidden)
	e.tokenClient(t, "comp-bot", users.Compliance).get(t, "/api/recordings/"+string(orphan)+"/audio").want(t, http.StatusOK)
}

func TestSupervisorWithoutTeamSeesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	c := e.tokenClient(t, "noteam-bot", users.Supervisor)
	if ids, total := searchIDs(t, c, ""); len(ids) != 0 || total != 0 {
		t.Errorf("search = %v (total %d), want nothing", ids, total)
	}
	c.get(t, "/api/interactions/WTeast1").want(t, http.StatusForbidden)
	c.get(t, "/api/recordings/"+string(e.inumOf(t, "east1"))+"/audio").want(t, http.StatusForbidden)
}

func TestComplianceSeesAll(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	for _, c := range []*client{e.login(t, "comp"), e.tokenClient(t, "admin-bot", users.Admin)} {
		ids, total := searchIDs(t, c, "")
		if want := []string{"WTmixed", "WTwest1", "WTeast2", "WTeast1"}; !cmp.Equal(ids, want) || total != 4 {
			t.Errorf("%s's search = %v (total %d), want %v", c.name, ids, total, want)
		}
		for _, name := range []string{"east1", "west1"} {
			c.get(t, "/api/interactions/WT"+name).want(t, http.StatusOK)
			c.get(t, "/api/recordings/"+string(e.inumOf(t, name))+"/audio").want(t, http.StatusOK)
		}
	}
}

func TestDisablingUserEndsSession(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	east := e.login(t, "east")
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	east.get(t, "/api/interactions").want(t, http.StatusOK)

	admin.do(t, http.MethodPatch, "/api/users/east", map[string]any{"disabled": true}).want(t, http.StatusOK)
	east.get(t, "/api/interactions").want(t, http.StatusUnauthorized)
	// Enabling the user again does not revive the old session.
	admin.do(t, http.MethodPatch, "/api/users/east", map[string]any{"disabled": false}).want(t, http.StatusOK)
	east.get(t, "/api/session").want(t, http.StatusUnauthorized)
	e.login(t, "east").get(t, "/api/session").want(t, http.StatusOK)

	// Disabled by another path than the API (the users command): the
	// session ends on its next request all the same.
	west := e.login(t, "west")
	if err := e.users.SetDisabled(context.Background(), "west", true); err != nil {
		t.Fatal(err)
	}
	west.get(t, "/api/session").want(t, http.StatusUnauthorized)
}

func TestRoleChangeAppliesAtOnce(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.seed(t)
	east := e.login(t, "east")
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	east.get(t, "/api/interactions/WTwest1").want(t, http.StatusForbidden)

	admin.do(t, http.MethodPatch, "/api/users/east", map[string]any{"teams": []string{"east", "west"}}).want(t, http.StatusOK)
	east.get(t, "/api/interactions/WTwest1").want(t, http.StatusOK)

	admin.do(t, http.MethodPatch, "/api/users/east", map[string]any{"role": "auditor", "teams": []string{}}).want(t, http.StatusOK)
	east.get(t, "/api/interactions").want(t, http.StatusForbidden)
	east.get(t, "/api/audit").want(t, http.StatusOK)
}

func TestRevokedTokenStopsWorking(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bot := e.tokenClient(t, "comp-bot", users.Compliance)
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	bot.get(t, "/api/interactions").want(t, http.StatusOK)
	admin.do(t, http.MethodDelete, "/api/tokens/comp-bot", nil).want(t, http.StatusNoContent)
	r := bot.get(t, "/api/interactions").want(t, http.StatusUnauthorized)
	if r.errorCode() != callrec.EUNAUTHENTICATED {
		t.Errorf("code %q, want %q", r.errorCode(), callrec.EUNAUTHENTICATED)
	}
}

func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var wg sync.WaitGroup
	reqs := make([]*http.Request, 4)
	results := make([]*http.Response, len(reqs))
	errs := make([]error, len(reqs))
	for i := range reqs {
		reqs[i] = e.newRequest(t, http.MethodPost, "/api/login", map[string]string{"username": fixtureUsers[i].Name, "password": testPassword})
	}
	for i := range reqs {
		wg.Go(func() { results[i], errs[i] = e.srv.Client().Do(reqs[i]) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, resp := range results {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		var body struct {
			CSRFToken string `json:"csrf_token"`
		}
		err := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
			t.Fatalf("login %d: status %d, cookies %v, %v", i, resp.StatusCode, resp.Cookies(), err)
		}
		c := &client{e: e, cookie: resp.Cookies()[0], csrf: body.CSRFToken}
		if seen[c.cookie.Value] || seen[c.csrf] {
			t.Errorf("login %d reused a cookie or CSRF token", i)
		}
		seen[c.cookie.Value], seen[c.csrf] = true, true
		var s struct{ User struct{ Name string } }
		c.get(t, "/api/session").want(t, http.StatusOK).decode(t, &s)
		if s.User.Name != fixtureUsers[i].Name {
			t.Errorf("session %d is %q's, want %q's", i, s.User.Name, fixtureUsers[i].Name)
		}
	}
}
