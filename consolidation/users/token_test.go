package users

import (
	"context"
	"testing"

	"callrec"

	"github.com/google/go-cmp/cmp"
)

func TestListTokens(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	got, err := s.ListTokens(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ListTokens of an empty store = %v, %v", got, err)
	}
	addUsers(t, s, User{Name: "alice", Role: Admin})
	for _, tok := range []User{{Name: "zz-export", Role: Supervisor, Teams: []string{"north"}}, {Name: "backup", Role: Compliance}} {
		if _, err := s.CreateToken(ctx, tok.Name, tok.Role, tok.Teams); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "backup"); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := s.now()
	want := []User{
		{Name: "backup", Role: Compliance, Disabled: true, Created: created},
		{Name: "zz-export", Role: Supervisor, Teams: []string{"north"}, Created: created},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ListTokens (-want +got):\n%s", diff)
	}
	users, err := s.List(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Fatalf("List mixes in tokens: %v, %v", users, err)
	}
}

func TestRevokeToken(t *testing.T) {
	s, path := openStore(t)
	ctx := context.Background()
	addUsers(t, s, User{Name: "alice", Role: Admin})
	token, err := s.CreateToken(ctx, "exporter", Compliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateToken(ctx, "backup", Compliance, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, token); err != nil {
		t.Fatalf("before revoking: %v", err)
	}
	if err := s.RevokeToken(ctx, "exporter"); err != nil {
		t.Fatal(err)
	}
	_, err = s.AuthenticateToken(ctx, token)
	_, errUnknown := s.AuthenticateToken(ctx, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if callrec.ErrorCode(err) != callrec.EFORBIDDEN || errUnknown == nil || err.Error() != errUnknown.Error() {
		t.Fatalf("revoked token: %v, want the unknown-token answer %v", err, errUnknown)
	}
	if u, err := s.AuthenticateToken(ctx, other); err != nil || u.Name != "backup" {
		t.Fatalf("revoking one token broke another: %+v, %v", u, err)
	}
	if err := s.RevokeToken(ctx, "exporter"); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	for _, name := range []string{"nobody", "alice", ""} {
		if err := s.RevokeToken(ctx, name); callrec.ErrorCode(err) != callrec.ENOTFOUND {
			t.Errorf("RevokeToken(%q) = %v, want ENOTFOUND", name, err)
		}
	}
	if _, err := s.Authenticate(ctx, "alice", goodPassword); err != nil {
		t.Errorf("RevokeToken(alice) touched the user: %v", err)
	}
	if _, err := s.CreateToken(ctx, "exporter", Compliance, nil); callrec.ErrorCode(err) != callrec.ECONFLICT {
		t.Errorf("reusing a revoked token's name = %v, want ECONFLICT", err)
	}
	// The revocation is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if _, err := s2.AuthenticateToken(ctx, token); callrec.ErrorCode(err) != callrec.EFORBIDDEN {
		t.Fatalf("revoked token after reopen: %v", err)
	}
	if _, err := s2.AuthenticateToken(ctx, other); err != nil {
		t.Fatalf("other token after reopen: %v", err)
	}
}
