package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"callrec"
	"callrec/consolidation/users"
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
