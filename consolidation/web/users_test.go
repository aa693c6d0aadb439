package web_test

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
)

type userJSON struct {
	Name     string     `json:"name"`
	Role     users.Role `json:"role"`
	Teams    []string   `json:"teams"`
	Disabled bool       `json:"disabled"`
}

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.login(t, "admin")
	const newPassword = "a different long password"

	var list struct{ Items []userJSON }
	r := admin.get(t, "/api/users").want(t, http.StatusOK)
	r.decode(t, &list)
	if len(list.Items) != len(fixtureUsers) || list.Items[0].Name != "admin" {
		t.Errorf("users = %+v, want the %d fixture users by name", list.Items, len(fixtureUsers))
	}
	if s := string(r.Body); strings.Contains(s, "argon2") || strings.Contains(s, "hash") || strings.Contains(s, testPassword) {
		t.Errorf("user list shows password material: %s", s)
	}

	steps := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		want   *auditLine // nil: nothing audited
		// failed: the change was attempted (want is audited first) and
		// refused: a second entry like want says so in its reason
		// ("failed: …"), a PATCH's also lists what was applied.
		failed bool
		check  func(t *testing.T, r *result)
	}{
		{name: "add", method: http.MethodPost, path: "/api/users", status: http.StatusCreated,
			body: map[string]any{"name": "north", "role": "supervisor", "teams": []string{"north"}, "password": testPassword},
			want: &auditLine{Type: audit.UserAdded, Target: "north", Details: map[string]string{"role": "supervisor", "teams": "north"}},
			check: func(t *testing.T, r *result) {
				var u userJSON
				r.decode(t, &u)
				if !cmp.Equal(u, userJSON{Name: "north", Role: users.Supervisor, Teams: []string{"north"}}) {
					t.Errorf("added %+v", u)
				}
			}},
		{name: "add a taken name", method: http.MethodPost, path: "/api/users", status: http.StatusConflict,
			body:   map[string]any{"name": "north", "role": "auditor", "password": testPassword},
			failed: true, want: &auditLine{Type: audit.UserAdded, Target: "north", Details: map[string]string{"role": "auditor", "teams": ""}}},
		{name: "add with an unknown role", method: http.MethodPost, path: "/api/users", status: http.StatusBadRequest,
			body:   map[string]any{"name": "x", "role": "root", "password": testPassword},
			failed: true, want: &auditLine{Type: audit.UserAdded, Target: "x", Details: map[string]string{"role": "root", "teams": ""}}},
		{name: "add with a short password", method: http.MethodPost, path: "/api/users", status: http.StatusBadRequest,
			body:   map[string]any{"name": "x", "role": "auditor", "password": "short"},
			failed: true, want: &auditLine{Type: audit.UserAdded, Target: "x", Details: map[string]string{"role": "auditor", "teams": ""}}},
		{name: "add with a bad name", method: http.MethodPost, path: "/api/users", status: http.StatusBadRequest,
			body:   map[string]any{"name": "x y", "role": "auditor", "password": testPassword},
			failed: true, want: &auditLine{Type: audit.UserAdded, Target: "x y", Details: map[string]string{"role": "auditor", "teams": ""}}},
		{name: "change teams", method: http.MethodPatch, path: "/api/users/north", status: http.StatusOK,
			body: map[string]any{"teams": []string{"north", "south"}},
			want: &auditLine{Type: audit.UserChanged, Target: "north", Details: map[string]string{"role": "supervisor", "teams": "north,south"}}},
		{name: "change role", method: http.MethodPatch, path: "/api/users/north", status: http.StatusOK,
			body: map[string]any{"role": "compliance", "teams": []string{}},
			want: &auditLine{Type: audit.UserChanged, Target: "north", Details: map[string]string{"role": "compliance", "teams": ""}},
			check: func(t *testing.T, r *result) {
				var u userJSON
				r.decode(t, &u)
				if u.Role != users.Compliance || len(u.Teams) != 0 {
					t.Errorf("after the role change: %+v", u)
				}
			}},
		{name: "change password", method: http.MethodPatch, path: "/api/users/north", status: http.StatusOK,
			body: map[string]any{"password": newPassword},
			want: &auditLine{Type: audit.UserChanged, Target: "north", Details: map[string]string{"password": "changed"}}},
		{name: "too short a password", method: http.MethodPatch, path: "/api/users/north", status: http.StatusBadRequest,
			body:   map[string]any{"password": "short"},
			failed: true, want: &auditLine{Type: audit.UserChanged, Target: "north", Details: map[string]string{"password": "changed"}}},
		{name: "disable", method: http.MethodPatch, path: "/api/users/north", status: http.StatusOK,
			body: map[string]any{"disabled": true},
			want: &auditLine{Type: audit.UserChanged, Target: "north", Details: map[string]string{"disabled": "true"}}},
		{name: "nothing to change", method: http.MethodPatch, path: "/api/users/north", status: http.StatusBadRequest, body: map[string]any{}},
		{name: "unknown field", method: http.MethodPatch, path: "/api/users/north", status: http.StatusBadRequest, body: map[string]any{"admin": true}},
		{name: "unknown user", method: http.MethodPatch, path: "/api/users/nobody", status: http.StatusNotFound, body: map[string]any{"disabled": true}},
		{name: "disable the last admin", method: http.MethodPatch, path: "/api/users/admin", status: http.StatusConflict, body: map[string]any{"disabled": true},
			failed: true, want: &auditLine{Type: audit.UserChanged, Target: "admin", Details: map[string]string{"disabled": "true"}}},
		{name: "demote the last admin", method: http.MethodPatch, path: "/api/users/admin", status: http.StatusConflict, body: map[string]any{"role": "auditor"},
			failed: true, want: &auditLine{Type: audit.UserChanged, Target: "admin", Details: map[string]string{"role": "auditor", "teams": ""}}},
	}
	for _, st := range steps {
		mark := e.auditMark(t)
		r := admin.do(t, st.method, st.path, st.body)
		if r.Status != st.status {
			t.Errorf("%s: %s, want %d", st.name, r, st.status)
			continue
		}
		var want []auditLine
		got := lines(e.auditSince(t, mark))
		if st.want != nil {
			w := *st.want
			w.Actor, w.Role = "admin", "admin"
			want = []auditLine{w}
			if st.failed {
				f := w
				f.Details = maps.Clone(w.Details)
				if w.Type == audit.UserChanged {
					f.Details["applied"] = ""
				}
				f.Reason = "failed: …"
				if len(got) == 2 && strings.HasPrefix(got[1].Reason, "failed: ") && len(got[1].Reason) > len("failed: ") {
					f.Reason = got[1].Reason
				}
				want = append(want, f)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: audit (-want +got):\n%s", st.name, diff)
		}
		if st.check != nil {
			st.check(t, r)
		}
	}
	u, err := e.users.Get(context.Background(), "north")
	if err != nil || !u.Disabled || u.Role != users.Compliance {
		t.Errorf("north is %+v (%v), want a disabled compliance user", u, err)
	}
	// Disabled: neither password signs in; enabled again: only the new one.
	e.loginResult(t, "north", newPassword).want(t, http.StatusUnauthorized)
	admin.do(t, http.MethodPatch, "/api/users/north", map[string]any{"disabled": false}).want(t, http.StatusOK)
	e.loginResult(t, "north", testPassword).want(t, http.StatusUnauthorized)
	e.loginResult(t, "north", newPassword).want(t, http.StatusOK)
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	east := e.login(t, "east")
	west := e.login(t, "west")
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	admin.do(t, http.MethodPatch, "/api/users/east", map[string]any{"password": "a brand new password"}).want(t, http.StatusOK)
	east.get(t, "/api/session").want(t, http.StatusUnauthorized)
	west.get(t, "/api/session").want(t, http.StatusOK)
	e.loginResult(t, "east", testPassword).want(t, http.StatusUnauthorized)
	e.loginResult(t, "east", "a brand new password").want(t, http.StatusOK)
}

func TestTokensAPI(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.login(t, "admin")

	mark := e.auditMark(t)
	var created struct {
		Name  string     `json:"name"`
		Role  users.Role `json:"role"`
		Teams []string   `json:"teams"`
		Token string     `json:"token"`
	}
	admin.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": "etl", "role": "supervisor", "teams": []string{"east"}}).
		want(t, http.StatusCreated).decode(t, &created)
	if created.Name != "etl" || created.Role != users.Supervisor || len(created.Token) < 40 {
		t.Fatalf("created %+v", created)
	}
	want := []auditLine{{Type: audit.UserAdded, Actor: "admin", Role: "admin", Target: "etl",
		Details: map[string]string{"kind": "api_token", "role": "supervisor", "teams": "east"}}}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	admin.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": "etl", "role": "auditor"}).want(t, http.StatusConflict)
	admin.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": "east", "role": "auditor"}).want(t, http.StatusConflict) // a user's name
	admin.do(t, http.MethodPost, "/api/tokens", map[string]any{"name": "x", "role": "god"}).want(t, http.StatusBadRequest)

	bot := &client{e: e, name: "etl", token: created.Token}
	var sess struct {
		User      userJSON `json:"user"`
		CSRFToken string   `json:"csrf_token"`
	}
	bot.get(t, "/api/session").want(t, http.StatusOK).decode(t, &sess)
	if sess.User.Name != "etl" || sess.User.Role != users.Supervisor || sess.CSRFToken != "" {
		t.Errorf("token session = %+v, want etl (supervisor) without a CSRF token", sess)
	}

	var list struct{ Items []userJSON }
	r := admin.get(t, "/api/tokens").want(t, http.StatusOK)
	r.decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "etl" || list.Items[0].Disabled {
		t.Errorf("tokens = %+v", list.Items)
	}
	if strings.Contains(string(r.Body), created.Token) {
		t.Error("the token list shows the token")
	}

	mark = e.auditMark(t)
	admin.do(t, http.MethodDelete, "/api/tokens/etl", nil).want(t, http.StatusNoContent)
	want = []auditLine{{Type: audit.UserChanged, Actor: "admin", Role: "admin", Target: "etl",
		Details: map[string]string{"kind": "api_token", "revoked": "true"}}}
	if diff := cmp.Diff(want, lines(e.auditSince(t, mark))); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	bot.get(t, "/api/session").want(t, http.StatusUnauthorized)
	admin.get(t, "/api/tokens").want(t, http.StatusOK).decode(t, &list)
	if len(list.Items) != 1 || !list.Items[0].Disabled {
		t.Errorf("after revoking: tokens = %+v, want etl disabled", list.Items)
	}
	admin.do(t, http.MethodDelete, "/api/tokens/nothing", nil).want(t, http.StatusNotFound)
}

func TestUsersAPIAdminOnly(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	clients := []*client{
		e.login(t, "comp"),
		e.tokenClient(t, "aud-bot", users.Auditor),
		e.tokenClient(t, "east-bot", users.Supervisor, "east"),
	}
	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/users", nil},
		{http.MethodPost, "/api/users", map[string]any{"name": "sneaky", "role": "admin", "password": testPassword}},
		{http.MethodPatch, "/api/users/comp", map[string]any{"role": "admin"}},
		{http.MethodGet, "/api/tokens", nil},
		{http.MethodPost, "/api/tokens", map[string]any{"name": "sneaky-bot", "role": "admin"}},
		{http.MethodDelete, "/api/tokens/aud-bot", nil},
	}
	for _, c := range clients {
		for _, rt := range routes {
			mark := e.auditMark(t)
			r := c.do(t, rt.method, rt.path, rt.body)
			if r.Status != http.StatusForbidden || r.errorCode() != callrec.EFORBIDDEN {
				t.Errorf("%s: %s %s = %s, want 403", c.name, rt.method, rt.path, r)
			}
			got := e.auditSince(t, mark)
			if len(got) != 1 || got[0].Type != audit.AccessDenied || got[0].Actor != c.name || got[0].Target != rt.path {
				t.Errorf("%s: %s %s audited %v, want one access_denied", c.name, rt.method, rt.path, lines(got))
			}
		}
	}
	ctx := context.Background()
	if _, err := e.users.Get(ctx, "sneaky"); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("user sneaky: %v, want not found", err)
	}
	if u, _ := e.users.Get(ctx, "comp"); u.Role != users.Compliance {
		t.Errorf("comp became %s", u.Role)
	}
	toks, _ := e.users.ListTokens(ctx)
	for _, u := range toks {
		if u.Name == "sneaky-bot" || u.Disabled {
			t.Errorf("token %+v", u)
		}
	}
}

// TestUserChangesFailClosed: with the audit trail down, an admin action
// must not take effect unaudited (the answer is 503 either way).
func TestUserChangesFailClosed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	admin := e.tokenClient(t, "admin-bot", users.Admin)
	if err := e.audit.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin.do(t, http.MethodPost, "/api/users", map[string]any{"name": "ghost", "role": "admin", "password": testPassword}).
		want(t, http.StatusServiceUnavailable)
	if _, err := e.users.Get(ctx, "ghost"); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("POST /api/users answered 503 (audit trail down) but created admin ghost, unaudited (Get: %v)", err)
	}
	admin.do(t, http.MethodPatch, "/api/users/comp", map[string]any{"role": "admin"}).want(t, http.StatusServiceUnavailable)
	if u, _ := e.users.Get(ctx, "comp"); u.Role != users.Compliance {
		t.Errorf("PATCH /api/users/comp answered 503 (audit trail down) but made comp %s, unaudited", u.Role)
	}
}
