package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"callrec"

	"github.com/google/go-cmp/cmp"
)

const goodPassword = "correct horse battery"

func TestAddAndAuthenticate(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	alice := User{Name: "alice", Role: Supervisor, Teams: []string{"north"}}
	if err := s.Add(ctx, alice, goodPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, User{Name: "dave", Role: Compliance, Disabled: true}, goodPassword); err != nil {
		t.Fatal(err)
	}
	alice.Created = s.now()
	tests := []struct {
		name, user, password string
		want                 User
		code                 string
	}{
		{"ok", "alice", goodPassword, alice, ""},
		{"wrong password", "alice", goodPassword + "!", User{}, callrec.EFORBIDDEN},
		{"unknown user", "bob", goodPassword, User{}, callrec.EFORBIDDEN},
		{"disabled user", "dave", goodPassword, User{}, callrec.EFORBIDDEN},
		{"empty password", "alice", "", User{}, callrec.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Authenticate(ctx, tt.user, tt.password)
			if code := callrec.ErrorCode(err); code != tt.code {
				t.Fatalf("Authenticate = %v, want code %q", err, tt.code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("user (-want +got):\n%s", diff)
			}
		})
	}
	_, errUnknown := s.Authenticate(ctx, "bob", goodPassword)
	_, errWrong := s.Authenticate(ctx, "alice", "wrong password!!")
	if errUnknown.Error() != errWrong.Error() {
		t.Errorf("unknown user %q and wrong password %q answer differently", errUnknown, errWrong)
	}
}

func TestAddInvalidAndConflict(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	if err := s.Add(ctx, User{Name: "alice", Role: Admin}, goodPassword); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		u        User
		password string
		code     string
	}{
		{"empty name", User{Role: Admin}, goodPassword, callrec.EINVALID},
		{"bad name", User{Name: "a b", Role: Admin}, goodPassword, callrec.EINVALID},
		{"unknown role", User{Name: "bob", Role: "root"}, goodPassword, callrec.EINVALID},
		{"short password", User{Name: "bob", Role: Admin}, "elevenchars", callrec.EINVALID},
		{"empty team", User{Name: "bob", Role: Supervisor, Teams: []string{""}}, goodPassword, callrec.EINVALID},
		{"exists", User{Name: "alice", Role: Auditor}, goodPassword, callrec.ECONFLICT},
		{"twelve chars is enough", User{Name: "carol", Role: Auditor}, "twelve chars", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Add(ctx, tt.u, tt.password); callrec.ErrorCode(err) != tt.code {
				t.Fatalf("Add = %v, want code %q", err, tt.code)
			}
		})
	}
}

func TestGetListSetPassword(t *testing.T) {
	s, path := openStore(t)
	ctx := context.Background()
	for _, u := range []User{{Name: "zed", Role: Auditor}, {Name: "amy", Role: Compliance}} {
		if err := s.Add(ctx, u, goodPassword); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "nobody"); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Fatalf("Get unknown = %v", err)
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := s.now()
	want := []User{{Name: "amy", Role: Compliance, Created: created}, {Name: "zed", Role: Auditor, Created: created}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	if err := s.SetPassword(ctx, "nobody", goodPassword); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Fatalf("SetPassword unknown = %v", err)
	}
	if err := s.SetPassword(ctx, "amy", "short"); callrec.ErrorCode(err) != callrec.EINVALID {
		t.Fatalf("SetPassword short = %v", err)
	}
	const newPassword = "a much newer password"
	if err := s.SetPassword(ctx, "amy", newPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "amy", goodPassword); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
		t.Fatalf("old password still works: %v", err)
	}
	// Reopen: the new password persists and the plaintext is nowhere in the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if _, err := s2.Authenticate(ctx, "amy", newPassword); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(newPassword)) || bytes.Contains(raw, []byte(goodPassword)) {
		t.Fatal("a plaintext password is in the file")
	}
}

func TestTokens(t *testing.T) {
	s, path := openStore(t)
	ctx := context.Background()
	if err := s.Add(ctx, User{Name: "alice", Role: Admin}, goodPassword); err != nil {
		t.Fatal(err)
	}
	token, err := s.CreateToken(ctx, "exporter", Supervisor, []string{"north", "south"})
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || strings.ContainsAny(token, "+/=") {
		t.Fatalf("token %q is not 32 bytes of unpadded base64url", token)
	}
	got, err := s.AuthenticateToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	want := User{Name: "exporter", Role: Supervisor, Teams: []string{"north", "south"}, Created: s.now()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("AuthenticateToken (-want +got):\n%s", diff)
	}
	other, err := s.CreateToken(ctx, "backup", Compliance, nil)
	if err != nil || other == token {
		t.Fatalf("second token %q, %v", other, err)
	}
	for _, name := range []string{"alice", "exporter"} {
		if _, err := s.CreateToken(ctx, name, Auditor, nil); callrec.ErrorCode(err) != callrec.ECONFLICT {
			t.Errorf("CreateToken(%s) = %v, want ECONFLICT", name, err)
		}
	}
	if err := s.Add(ctx, User{Name: "exporter", Role: Admin}, goodPassword); callrec.ErrorCode(err) != callrec.ECONFLICT {
		t.Errorf("Add over a token name = %v, want ECONFLICT", err)
	}
	if _, err := s.CreateToken(ctx, "x", "god", nil); callrec.ErrorCode(err) != callrec.EINVALID {
		t.Errorf("CreateToken bad role = %v", err)
	}
	flipped := []byte(token)
	flipped[0] ^= 1
	for _, bad := range []string{"", "not a token", token[:42], token + "A", string(flipped)} {
		if _, err := s.AuthenticateToken(ctx, bad); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
			t.Errorf("AuthenticateToken(%q) = %v, want EFORBIDDEN", bad, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte(other)) {
		t.Fatal("a token is stored in the clear")
	}
}

func TestDefaultParams(t *testing.T) {
	s, _ := openStore(t)
	s.params = DefaultParams
	ctx := context.Background()
	if err := s.Add(ctx, User{Name: "alice", Role: Admin}, goodPassword); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the first one in a process also pays for page faults
		start := time.Now()
		if _, err := s.Authenticate(ctx, "alice", goodPassword); err != nil {
			t.Fatal(err)
		}
		t.Logf("verification %d with DefaultParams: %v", i+1, time.Since(start))
	}
	// Unknown users cost about as much as known ones (the dummy hash is
	// computed on first use, so warm it up before timing).
	_, _ = s.Authenticate(ctx, "nobody", goodPassword)
	start := time.Now()
	_, _ = s.Authenticate(ctx, "nobody", goodPassword)
	t.Logf("unknown user: %v", time.Since(start))
}

func TestAuthenticateDisabled(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	addUsers(t, s, User{Name: "root", Role: Admin}, User{Name: "alice", Role: Compliance})
	if err := s.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if u := mustGet(t, s, "alice"); !u.Disabled || u.CanSearch() {
		t.Fatalf("after SetDisabled(true): %+v, CanSearch %v", u, u.CanSearch())
	}
	_, errDisabled := s.Authenticate(ctx, "alice", goodPassword)
	_, errWrong := s.Authenticate(ctx, "root", "wrong password!!")
	if errDisabled == nil || errDisabled.Error() != errWrong.Error() {
		t.Fatalf("disabled user with the right password: %v, want the wrong-password answer %v", errDisabled, errWrong)
	}
	if err := s.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	if err := s.SetDisabled(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Authenticate(ctx, "alice", goodPassword); err != nil || u.Disabled {
		t.Fatalf("re-enabled user: %+v, %v", u, err)
	}
	for _, name := range []string{"nobody", ""} {
		if err := s.SetDisabled(ctx, name, true); callrec.ErrorCode(err) != callrec.ENOTFOUND {
			t.Errorf("SetDisabled(%q) = %v, want ENOTFOUND", name, err)
		}
	}
	if _, err := s.CreateToken(ctx, "bot", Compliance, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, "bot", true); callrec.ErrorCode(err) != callrec.ENOTFOUND {
		t.Errorf("SetDisabled of a token = %v, want ENOTFOUND", err)
	}
}

// TestAuthenticateDisabledVerifiesPassword: a disabled user's password is
// still verified (the same work as for an enabled user, so timing does not
// reveal the flag). A corrupt hash makes that verification observable.
func TestAuthenticateDisabledVerifiesPassword(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	addUsers(t, s, User{Name: "dave", Role: Compliance, Disabled: true})
	putHash(t, s, "dave", "$argon2id$corrupt")
	if _, err := s.Authenticate(ctx, "dave", goodPassword); !errors.Is(err, ErrBadHash) {
		t.Fatalf("Authenticate of a disabled user with a corrupt hash = %v, want ErrBadHash (hash not verified?)", err)
	}
}

func TestSetRole(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	addUsers(t, s, User{Name: "root", Role: Admin}, User{Name: "alice", Role: Compliance})
	if _, err := s.CreateToken(ctx, "bot", Compliance, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user string
		role       Role
		teams      []string
		code       string
	}{
		{"to supervisor", "alice", Supervisor, []string{"north", "south"}, ""},
		{"unknown role", "alice", "root", nil, callrec.EINVALID},
		{"empty team", "alice", Supervisor, []string{"north", ""}, callrec.EINVALID},
		{"unknown user", "nobody", Auditor, nil, callrec.ENOTFOUND},
		{"token", "bot", Auditor, nil, callrec.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetRole(ctx, tt.user, tt.role, tt.teams); callrec.ErrorCode(err) != tt.code {
				t.Fatalf("SetRole = %v, want code %q", err, tt.code)
			}
		})
	}
	// Only the successful change took effect, and nothing else changed.
	want := User{Name: "alice", Role: Supervisor, Teams: []string{"north", "south"}, Created: s.now()}
	if diff := cmp.Diff(want, mustGet(t, s, "alice")); diff != "" {
		t.Fatalf("alice (-want +got):\n%s", diff)
	}
	if u, err := s.Authenticate(ctx, "alice", goodPassword); err != nil || u.Role != Supervisor {
		t.Fatalf("password after SetRole: %+v, %v", u, err)
	}
	if err := s.SetRole(ctx, "alice", Compliance, nil); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "alice"); got.Role != Compliance || got.Teams != nil {
		t.Fatalf("SetRole(compliance, nil) left %+v", got)
	}
}

// TestLastAdmin: the last enabled admin can be neither disabled nor demoted;
// disabled admins and admin API tokens do not count.
func TestLastAdmin(t *testing.T) {
	ctx := context.Background()
	demote := func(s *Store, name string) error { return s.SetRole(ctx, name, Compliance, nil) }
	disable := func(s *Store, name string) error { return s.SetDisabled(ctx, name, true) }
	tests := []struct {
		name   string
		users  []User
		tokens []Role
		change func(*Store, string) error
		target string
		refuse bool
	}{
		{"demote the only admin", []User{{Name: "root", Role: Admin}}, nil, demote, "root", true},
		{"disable the only admin", []User{{Name: "root", Role: Admin}}, nil, disable, "root", true},
		{"keep the only admin admin", []User{{Name: "root", Role: Admin}}, nil,
			func(s *Store, n string) error { return s.SetRole(ctx, n, Admin, []string{"x"}) }, "root", false},
		{"enable the only admin", []User{{Name: "root", Role: Admin}}, nil,
			func(s *Store, n string) error { return s.SetDisabled(ctx, n, false) }, "root", false},
		{"other admin disabled", []User{{Name: "root", Role: Admin}, {Name: "old", Role: Admin, Disabled: true}}, nil, disable, "root", true},
		{"other admin is a token", []User{{Name: "root", Role: Admin}}, []Role{Admin}, demote, "root", true},
		{"other non-admin users", []User{{Name: "root", Role: Admin}, {Name: "amy", Role: Compliance}}, nil, demote, "root", true},
		{"two enabled admins", []User{{Name: "root", Role: Admin}, {Name: "bea", Role: Admin}}, nil, disable, "root", false},
		{"demote a disabled admin", []User{{Name: "root", Role: Admin}, {Name: "old", Role: Admin, Disabled: true}}, nil, demote, "old", false},
		{"no admin at all", []User{{Name: "amy", Role: Compliance}}, nil, disable, "amy", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			addUsers(t, s, tt.users...)
			for i, role := range tt.tokens {
				if _, err := s.CreateToken(ctx, fmt.Sprintf("token%d", i), role, nil); err != nil {
					t.Fatal(err)
				}
			}
			before := mustGet(t, s, tt.target)
			err := tt.change(s, tt.target)
			if !tt.refuse {
				if err != nil {
					t.Fatalf("change refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLastAdmin) || callrec.ErrorCode(err) != callrec.ECONFLICT {
				t.Fatalf("change = %v, want ErrLastAdmin (ECONFLICT)", err)
			}
			if diff := cmp.Diff(before, mustGet(t, s, tt.target)); diff != "" {
				t.Fatalf("refused change still changed the user (-before +after):\n%s", diff)
			}
		})
	}
}

// TestLastAdminSequence: with two admins, the first can go; then the second
// is the last one, until the first is enabled again.
func TestLastAdminSequence(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	addUsers(t, s, User{Name: "root", Role: Admin}, User{Name: "bea", Role: Admin})
	steps := []struct {
		desc   string
		change func() error
		want   error
	}{
		{"disable root", func() error { return s.SetDisabled(ctx, "root", true) }, nil},
		{"demote bea", func() error { return s.SetRole(ctx, "bea", Auditor, nil) }, ErrLastAdmin},
		{"disable bea", func() error { return s.SetDisabled(ctx, "bea", true) }, ErrLastAdmin},
		{"enable root", func() error { return s.SetDisabled(ctx, "root", false) }, nil},
		{"demote bea now", func() error { return s.SetRole(ctx, "bea", Auditor, nil) }, nil},
		{"disable root again", func() error { return s.SetDisabled(ctx, "root", true) }, ErrLastAdmin},
	}
	for _, st := range steps {
		if err := st.change(); !errors.Is(err, st.want) {
			t.Fatalf("%s: %v, want %v", st.desc, err, st.want)
		}
	}
}
