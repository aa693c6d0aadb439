package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"

	"github.com/google/go-cmp/cmp"
)

// TestUserAddAndAuditVerify: `callrec user add` bootstraps an admin whose
// password verifies, is refused twice, and leaves an audit entry that
// `callrec audit verify` finds intact.
func TestUserAddAndAuditVerify(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t.Setenv("CALLREC_PASSWORD", "correct horse battery staple")
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"user", "add", "--data-dir", dir, "--name", "root", "--role", "admin"}, &out, &errOut); err != nil {
		t.Fatalf("user add: %v\n%s", err, errOut.String())
	}
	err := run(ctx, []string{"user", "add", "--data-dir", dir, "--name", "root", "--role", "admin"}, &out, &errOut)
	if callrec.ErrorCode(err) != callrec.ECONFLICT {
		t.Errorf("adding the same user again: %v, want a conflict", err)
	}
	st, err := users.Open(filepath.Join(dir, "consolidation", "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.Authenticate(ctx, "root", "correct horse battery staple")
	st.Close()
	if err != nil || u.Role != users.Admin {
		t.Fatalf("authenticate the new admin: %+v, %v", u, err)
	}
	out.Reset()
	if err := run(ctx, []string{"audit", "verify", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "intact: 1 entries") {
		t.Errorf("audit verify said %q", out.String())
	}
	if err := run(ctx, []string{"audit", "verify", "--data-dir", t.TempDir()}, &out, &errOut); err == nil {
		t.Error("verify of a missing trail succeeded")
	}
}

// adminCmd runs `callrec <group> <sub> --data-dir dir args…` with stdin and
// returns its stdout.
func adminCmd(t *testing.T, dir, stdin, group, sub string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{sub, "--data-dir", dir}, args...)
	var err error
	switch group {
	case "user":
		err = runUserCommand(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	case "token":
		err = runTokenCommand(context.Background(), args, &out, &errOut)
	default:
		t.Fatalf("adminCmd: group %q", group)
	}
	if err != nil {
		t.Logf("callrec %s %s: %v\n%s", group, strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), err
}

// mustAdminCmd is adminCmd for a command that must succeed.
func mustAdminCmd(t *testing.T, dir, stdin, group, sub string, args ...string) string {
	t.Helper()
	out, err := adminCmd(t, dir, stdin, group, sub, args...)
	if err != nil {
		t.Fatalf("callrec %s %s %v: %v", group, sub, args, err)
	}
	return out
}

// withUsers opens the user store under dir for fn and closes it again, so
// the next command can lock the file.
func withUsers(t *testing.T, dir string, fn func(*users.Store)) {
	t.Helper()
	st, err := users.Open(filepath.Join(dir, "consolidation", "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("close users: %v", err)
		}
	}()
	fn(st)
}

// auditChange is the part of an audit entry an admin command decides.
type auditChange struct {
	Type    audit.EventType
	Actor   string
	Target  string
	Details map[string]string
}

// auditChanges returns every audit entry under dir, oldest first.
func auditChanges(t *testing.T, dir string) []auditChange {
	t.Helper()
	log, err := audit.Open(filepath.Join(dir, "consolidation", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	entries, total, err := log.Find(context.Background(), audit.Filter{Limit: audit.MaxLimit})
	if err != nil || total != len(entries) {
		t.Fatalf("audit find: %d of %d entries, %v", len(entries), total, err)
	}
	var out []auditChange
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		out = append(out, auditChange{e.Type, e.Actor, e.Target, e.Details})
	}
	return out
}

// TestUserCommands runs a user's life through the CLI (add, passwd,
// set-role, disable, enable), checks each effect in the store, the refusals
// (last admin, unknown user, bad input) and the audit entries of exactly the
// changes that were made.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t.Setenv("CALLREC_PASSWORD", "") // passwords from stdin unless set below
	const rootPW, alicePW, alicePW2 = "root password 1", "alice password 1", "alice password 2"
	mustAdminCmd(t, dir, rootPW+"\n", "user", "add", "--name", "root", "--role", "admin")
	mustAdminCmd(t, dir, alicePW+"\r\n", "user", "add", "--name", "alice", "--role", "supervisor", "--teams", "north")

	t.Setenv("CALLREC_PASSWORD", alicePW2)
	mustAdminCmd(t, dir, "", "user", "passwd", "--name", "alice")
	t.Setenv("CALLREC_PASSWORD", "")
	withUsers(t, dir, func(st *users.Store) {
		if _, err := st.Authenticate(ctx, "alice", alicePW); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
			t.Errorf("old password after passwd: %v", err)
		}
		if _, err := st.Authenticate(ctx, "alice", alicePW2); err != nil {
			t.Errorf("new password after passwd: %v", err)
		}
	})

	mustAdminCmd(t, dir, "", "user", "set-role", "--name", "alice", "--role", "compliance")
	mustAdminCmd(t, dir, "", "user", "set-role", "--name", "alice", "--role", "supervisor", "--teams", "north,south")
	withUsers(t, dir, func(st *users.Store) {
		u, err := st.Get(ctx, "alice")
		if err != nil || u.Role != users.Supervisor || !slices.Equal(u.Teams, []string{"north", "south"}) {
			t.Errorf("after set-role: %+v, %v", u, err)
		}
	})

	mustAdminCmd(t, dir, "", "user", "disable", "--name", "alice")
	withUsers(t, dir, func(st *users.Store) {
		if _, err := st.Authenticate(ctx, "alice", alicePW2); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
			t.Errorf("disabled user authenticated: %v", err)
		}
	})
	mustAdminCmd(t, dir, "", "user", "enable", "--name", "alice")
	withUsers(t, dir, func(st *users.Store) {
		if u, err := st.Authenticate(ctx, "alice", alicePW2); err != nil || u.Disabled {
			t.Errorf("re-enabled user: %+v, %v", u, err)
		}
	})

	refusals := []struct {
		stdin string
		args  []string
		code  string
	}{
		{"", []string{"disable", "--name", "root"}, callrec.ECONFLICT},
		{"", []string{"set-role", "--name", "root", "--role", "auditor"}, callrec.ECONFLICT},
		{"", []string{"disable", "--name", "nobody"}, callrec.ENOTFOUND},
		{"", []string{"enable", "--name", "nobody"}, callrec.ENOTFOUND},
		{"", []string{"set-role", "--name", "nobody", "--role", "auditor"}, callrec.ENOTFOUND},
		{"", []string{"set-role", "--name", "alice", "--role", "god"}, callrec.EINVALID},
		{"", []string{"set-role", "--name", "alice"}, callrec.EINVALID},
		{"", []string{"disable"}, callrec.EINVALID},
		{"a new password\n", []string{"passwd", "--name", "nobody"}, callrec.ENOTFOUND},
		{"short\n", []string{"passwd", "--name", "alice"}, callrec.EINVALID},
	}
	for _, r := range refusals {
		if _, err := adminCmd(t, dir, r.stdin, "user", r.args[0], r.args[1:]...); callrec.ErrorCode(err) != r.code {
			t.Errorf("user %v = %v, want code %q", r.args, err, r.code)
		}
	}
	if _, err := adminCmd(t, dir, "", "user", "disable", "--name", "root"); !errors.Is(err, users.ErrLastAdmin) {
		t.Errorf("disabling the last admin: %v, want ErrLastAdmin", err)
	}
	withUsers(t, dir, func(st *users.Store) {
		if u, err := st.Authenticate(ctx, "root", rootPW); err != nil || u.Role != users.Admin {
			t.Errorf("root after the refused changes: %+v, %v", u, err)
		}
	})

	const add, changed = audit.UserAdded, audit.UserChanged
	want := []auditChange{
		{add, "callrec user add", "root", map[string]string{"role": "admin"}},
		{add, "callrec user add", "alice", map[string]string{"role": "supervisor", "teams": "north"}},
		{changed, "callrec user passwd", "alice", map[string]string{"password": "changed"}},
		{changed, "callrec user set-role", "alice", map[string]string{"role": "compliance", "old_role": "supervisor", "old_teams": "north"}},
		{changed, "callrec user set-role", "alice", map[string]string{"role": "supervisor", "teams": "north,south", "old_role": "compliance"}},
		{changed, "callrec user disable", "alice", map[string]string{"disabled": "true"}},
		{changed, "callrec user enable", "alice", map[string]string{"disabled": "false"}},
	}
	if diff := cmp.Diff(want, auditChanges(t, dir)); diff != "" {
		t.Errorf("audit entries (-want +got):\n%s", diff)
	}
	var out, errOut bytes.Buffer
	if err := runAuditCommand(ctx, []string{"verify", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit verify: %v\n%s", err, out.String())
	}
	if wantOut := fmt.Sprintf("intact: %d entries", len(want)); !strings.Contains(out.String(), wantOut) {
		t.Errorf("audit verify said %q, want %q", out.String(), wantOut)
	}
}

// TestUserList checks `callrec user list`'s table against the store.
func TestUserList(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	t.Setenv("CALLREC_PASSWORD", "a long enough password")
	mustAdminCmd(t, dir, "", "user", "add", "--name", "root", "--role", "admin")
	mustAdminCmd(t, dir, "", "user", "add", "--name", "bob", "--role", "supervisor", "--teams", "a,b")
	mustAdminCmd(t, dir, "", "user", "disable", "--name", "bob")
	mustAdminCmd(t, dir, "", "token", "create", "--name", "robot", "--role", "compliance")
	created := map[string]string{}
	withUsers(t, dir, func(st *users.Store) {
		for _, name := range []string{"root", "bob"} {
			u, err := st.Get(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			created[name] = u.Created.Format(time.RFC3339)
		}
	})
	out := mustAdminCmd(t, dir, "", "user", "list")
	want := [][]string{
		{"NAME", "ROLE", "TEAMS", "DISABLED", "CREATED"},
		{"bob", "supervisor", "a,b", "yes", created["bob"]},
		{"root", "admin", "-", "no", created["root"]},
	}
	if diff := cmp.Diff(want, tableFields(out)); diff != "" {
		t.Errorf("user list (-want +got):\n%s\n%s", diff, out)
	}
}

// tableFields splits a table's lines into fields.
func tableFields(s string) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Fields(line))
	}
	return out
}

// TestTokenCommands creates an API token whose printed value (the whole of
// stdout) authenticates, lists and revokes it, and checks the refusals and
// audit entries.
func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	out := mustAdminCmd(t, dir, "", "token", "create", "--name", "exporter", "--role", "supervisor", "--teams", "north")
	token, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.ContainsAny(token, " \t\n") || token == "" {
		t.Fatalf("token create printed %q, want the token alone on one line", out)
	}
	withUsers(t, dir, func(st *users.Store) {
		u, err := st.AuthenticateToken(ctx, token)
		want := users.User{Name: "exporter", Role: users.Supervisor, Teams: []string{"north"}}
		if err != nil || u.Name != want.Name || u.Role != want.Role || !slices.Equal(u.Teams, want.Teams) || u.Created.IsZero() {
			t.Fatalf("printed token authenticates as %+v, %v; want %+v", u, err, want)
		}
	})

	refusals := []struct {
		args []string
		code string
	}{
		{[]string{"create", "--name", "exporter", "--role", "auditor"}, callrec.ECONFLICT},
		{[]string{"create", "--name", "other"}, callrec.EINVALID},
		{[]string{"create", "--name", "other", "--role", "god"}, callrec.EINVALID},
		{[]string{"create", "--role", "auditor"}, callrec.EINVALID},
		{[]string{"revoke", "--name", "nobody"}, callrec.ENOTFOUND},
		{[]string{"revoke"}, callrec.EINVALID},
	}
	for _, r := range refusals {
		out, err := adminCmd(t, dir, "", "token", r.args[0], r.args[1:]...)
		if callrec.ErrorCode(err) != r.code || out != "" {
			t.Errorf("token %v = %q, %v; want no output and code %q", r.args, out, err, r.code)
		}
	}

	list := mustAdminCmd(t, dir, "", "token", "list")
	if strings.Contains(list, token) {
		t.Fatal("token list shows the token")
	}
	if got := tableFields(list); len(got) != 2 || !slices.Equal(got[1][:4], []string{"exporter", "supervisor", "north", "no"}) {
		t.Errorf("token list before revoking:\n%s", list)
	}

	mustAdminCmd(t, dir, "", "token", "revoke", "--name", "exporter")
	withUsers(t, dir, func(st *users.Store) {
		if _, err := st.AuthenticateToken(ctx, token); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
			t.Errorf("revoked token: %v, want EFORBIDDEN", err)
		}
	})
	list = mustAdminCmd(t, dir, "", "token", "list")
	if got := tableFields(list); len(got) != 2 || !slices.Equal(got[0][:4], []string{"NAME", "ROLE", "TEAMS", "REVOKED"}) ||
		!slices.Equal(got[1][:4], []string{"exporter", "supervisor", "north", "yes"}) {
		t.Errorf("token list after revoking:\n%s", list)
	}

	want := []auditChange{
		{audit.UserAdded, "callrec token create", "exporter", map[string]string{"kind": "api_token", "role": "supervisor", "teams": "north"}},
		{audit.UserChanged, "callrec token revoke", "exporter", map[string]string{"kind": "api_token", "revoked": "true"}},
	}
	if diff := cmp.Diff(want, auditChanges(t, dir)); diff != "" {
		t.Errorf("audit entries (-want +got):\n%s", diff)
	}
}

// TestAdminUsage: a missing or unknown subcommand fails and prints usage
// naming every subcommand of its group.
func TestAdminUsage(t *testing.T) {
	ctx := context.Background()
	groups := []struct {
		name string
		run  func(args []string, stderr io.Writer) error
		subs []string
	}{
		{"user", func(args []string, stderr io.Writer) error {
			return runUserCommand(ctx, args, strings.NewReader(""), io.Discard, stderr)
		}, []string{"add", "list", "passwd", "disable", "enable", "set-role"}},
		{"token", func(args []string, stderr io.Writer) error {
			return runTokenCommand(ctx, args, io.Discard, stderr)
		}, []string{"create", "list", "revoke"}},
		{"audit", func(args []string, stderr io.Writer) error {
			return runAuditCommand(ctx, args, io.Discard, stderr)
		}, []string{"verify"}},
	}
	for _, g := range groups {
		for _, args := range [][]string{nil, {"bogus"}, {"--help"}} {
			t.Run(g.name+" "+strings.Join(args, " "), func(t *testing.T) {
				var errOut bytes.Buffer
				err := g.run(args, &errOut)
				if err == nil {
					t.Fatal("succeeded")
				}
				if len(args) == 1 && args[0] == "--help" && !errors.Is(err, flag.ErrHelp) {
					t.Errorf("--help: %v, want flag.ErrHelp", err)
				}
				for _, sub := range g.subs {
					if !strings.Contains(errOut.String(), "\n  "+sub+" ") {
						t.Errorf("usage does not list %q:\n%s", sub, errOut.String())
					}
				}
			})
		}
	}
}

// TestAdminMissingDataDir: commands that need existing users or tokens fail
// under a mistyped --data-dir instead of creating an empty installation there.
func TestAdminMissingDataDir(t *testing.T) {
	t.Setenv("CALLREC_PASSWORD", "a long enough password")
	for _, args := range [][]string{
		{"user", "list"},
		{"user", "passwd", "--name", "root"},
		{"user", "disable", "--name", "root"},
		{"user", "enable", "--name", "root"},
		{"user", "set-role", "--name", "root", "--role", "admin"},
		{"token", "list"},
		{"token", "revoke", "--name", "robot"},
	} {
		missing := filepath.Join(t.TempDir(), "typo")
		if _, err := adminCmd(t, missing, "", args[0], args[1], args[2:]...); err == nil {
			t.Errorf("%v under a missing data dir succeeded", args)
		}
		if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v created %s: %v", args, missing, err)
		}
	}
}
