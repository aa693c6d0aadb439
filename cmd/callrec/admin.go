package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"callrec/consolidation/audit"
	"callrec/consolidation/users"
)

// consolidationPath is where consolidation keeps a store under the data dir.
func consolidationPath(dataDir, file string) (string, error) {
	dir := filepath.Join(dataDir, "consolidation")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return filepath.Join(dir, file), nil
}

// runUserCommand manages users: `callrec user add` bootstraps the first admin.
func runUserCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: callrec user add --name NAME --role admin|compliance|supervisor|auditor [--teams a,b] (password from CALLREC_PASSWORD or stdin)")
		return fmt.Errorf("unknown user command")
	}
	fs := newFlagSet("user add", "Adds a user who can sign in to the compliance UI and API. The password is read from CALLREC_PASSWORD, or from the first line of standard input.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "user name (login)")
	role := fs.String("role", "compliance", "admin, compliance (all calls), supervisor (own teams), auditor (audit trail only)")
	teams := fs.String("teams", "", "supervisor's teams, comma-separated")
	if err := parseFlags(fs, args[1:], nil); err != nil {
		return err
	}
	password := os.Getenv("CALLREC_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("no password: set CALLREC_PASSWORD or give it on standard input")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	path, err := consolidationPath(*dataDir, "users.db")
	if err != nil {
		return err
	}
	st, err := users.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	u := users.User{Name: *name, Role: users.Role(*role), Teams: splitList(*teams), Created: time.Now().UTC()}
	if err := st.Add(ctx, u, password); err != nil {
		return err
	}
	apath, err := consolidationPath(*dataDir, "audit.db")
	if err != nil {
		return err
	}
	log, err := audit.Open(apath)
	if err != nil {
		return err
	}
	defer log.Close()
	if _, err := log.Append(ctx, audit.Entry{Type: audit.UserAdded, Actor: "callrec user add", Target: u.Name, Details: map[string]string{"role": string(u.Role)}}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s)\n", u.Name, u.Role)
	return nil
}

// runAuditCommand checks the audit trail: `callrec audit verify`.
func runAuditCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "usage: callrec audit verify [--data-dir DIR]")
		return fmt.Errorf("unknown audit command")
	}
	fs := newFlagSet("audit verify", "Walks the whole audit trail, recomputing every entry's hash and its link to the previous one; exits non-zero at the first broken entry.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	if err := parseFlags(fs, args[1:], nil); err != nil {
		return err
	}
	path := filepath.Join(*dataDir, "consolidation", "audit.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no audit trail at %s: %w", path, err)
	}
	log, err := audit.Open(path)
	if err != nil {
		return err
	}
	defer log.Close()
	res, err := log.Verify(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "audit trail BROKEN after %d good entries: %v\n", res.Entries, err)
		return err
	}
	fmt.Fprintf(stdout, "audit trail intact: %d entries, last hash %s\n", res.Entries, res.LastHash)
	return nil
}
