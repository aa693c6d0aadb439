package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"callrec"
	"callrec/consolidation/audit"
	"callrec/consolidation/users"
)

const userUsage = `usage: callrec user <command> [flags]

Commands:
  add       --name NAME --role ROLE [--teams a,b]   add a user (bootstraps the first admin)
  list                                              list users: name, role, teams, disabled, created
  passwd    --name NAME                             set a user's password
  disable   --name NAME                             stop a user from signing in (users are never deleted)
  enable    --name NAME                             let a disabled user sign in again
  set-role  --name NAME --role ROLE [--teams a,b]   change a user's role and teams

ROLE is admin, compliance (all calls), supervisor (own teams) or auditor
(audit trail only). Passwords are read from CALLREC_PASSWORD, or from the
first line of standard input. The last enabled admin cannot be disabled or
demoted. Every command takes --data-dir DIR (default ./data); every change
is recorded in the audit trail.
`

const tokenUsage = `usage: callrec token <command> [flags]

Commands:
  create  --name NAME --role ROLE [--teams a,b]   create an API token; prints only the token
  list                                            list tokens: name, role, teams, revoked, created
  revoke  --name NAME                             revoke a token at once (its name stays taken)

ROLE is admin, compliance, supervisor or auditor. Every command takes
--data-dir DIR (default ./data); every change is recorded in the audit trail.
`

const auditUsage = `usage: callrec audit <command> [flags]

Commands:
  verify   check the audit trail's hash chain

Every command takes --data-dir DIR (default ./data).
`

// consolidationPath is where consolidation keeps a store under the data dir.
func consolidationPath(dataDir, file string) (string, error) {
	dir := filepath.Join(dataDir, "consolidation")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	return filepath.Join(dir, file), nil
}

// subcommandUsage prints usage for a missing, unknown or help subcommand and
// returns the error to exit with.
func subcommandUsage(group string, args []string, usage string, stderr io.Writer) error {
	fmt.Fprint(stderr, usage)
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing %s command", group)
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		return flag.ErrHelp
	default:
		return fmt.Errorf("unknown %s command %q", group, args[0])
	}
}

// runUserCommand manages the users of the compliance UI and API: add, list,
// passwd, disable, enable, set-role.
func runUserCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return subcommandUsage("user", args, userUsage, stderr)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "add":
		return userAdd(ctx, rest, stdin, stdout, stderr)
	case "list":
		return userList(ctx, rest, stdout, stderr)
	case "passwd":
		return userPasswd(ctx, rest, stdin, stdout, stderr)
	case "disable":
		return userSetDisabled(ctx, rest, true, stdout, stderr)
	case "enable":
		return userSetDisabled(ctx, rest, false, stdout, stderr)
	case "set-role":
		return userSetRole(ctx, rest, stdout, stderr)
	default:
		return subcommandUsage("user", args, userUsage, stderr)
	}
}

// runTokenCommand manages machine API tokens: create, list, revoke.
func runTokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return subcommandUsage("token", args, tokenUsage, stderr)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "create":
		return tokenCreate(ctx, rest, stdout, stderr)
	case "list":
		return tokenList(ctx, rest, stdout, stderr)
	case "revoke":
		return tokenRevoke(ctx, rest, stdout, stderr)
	default:
		return subcommandUsage("token", args, tokenUsage, stderr)
	}
}

// userAdd is `callrec user add`.
func userAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user add", "Adds a user who can sign in to the compliance UI and API. The password is read from CALLREC_PASSWORD, or from the first line of standard input.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "user name (login)")
	role := fs.String("role", "compliance", "admin, compliance (all calls), supervisor (own teams), auditor (audit trail only)")
	teams := fs.String("teams", "", "supervisor's teams, comma-separated")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	password, err := readPassword(stdin)
	if err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, true)
	if err != nil {
		return err
	}
	defer a.close()
	u := users.User{Name: *name, Role: users.Role(*role), Teams: splitList(*teams), Created: time.Now().UTC()}
	if err := a.users.Add(ctx, u, password); err != nil {
		return err
	}
	if err := a.record(ctx, audit.UserAdded, "callrec user add", u.Name, accessDetails(u.Role, u.Teams)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added %s (%s)\n", u.Name, u.Role)
	return nil
}

// userList is `callrec user list`.
func userList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user list", "Lists the users of the compliance UI and API (not API tokens; see callrec token list).", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	st, err := openUsers(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := st.List(ctx)
	if err != nil {
		return err
	}
	return writeUserTable(stdout, "DISABLED", us)
}

// userPasswd is `callrec user passwd`.
func userPasswd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("user passwd", "Sets a user's password. The password is read from CALLREC_PASSWORD, or from the first line of standard input.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "user name (login)")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	password, err := readPassword(stdin)
	if err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, false)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.users.SetPassword(ctx, *name, password); err != nil {
		return err
	}
	if err := a.record(ctx, audit.UserChanged, "callrec user passwd", *name, map[string]string{"password": "changed"}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "changed the password of %s\n", *name)
	return nil
}

// userSetDisabled is `callrec user disable` and `callrec user enable`.
func userSetDisabled(ctx context.Context, args []string, disabled bool, stdout, stderr io.Writer) error {
	cmd, about, done := "user enable", "Lets a disabled user sign in again.", "enabled"
	if disabled {
		cmd, about, done = "user disable", "Stops a user from signing in; the user and their audit trail stay. The last enabled admin cannot be disabled.", "disabled"
	}
	fs := newFlagSet(cmd, about, stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "user name (login)")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, false)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.users.SetDisabled(ctx, *name, disabled); err != nil {
		return err
	}
	if err := a.record(ctx, audit.UserChanged, "callrec "+cmd, *name, map[string]string{"disabled": strconv.FormatBool(disabled)}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", done, *name)
	return nil
}

// userSetRole is `callrec user set-role`.
func userSetRole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user set-role", "Changes a user's role and teams (the teams given replace the old ones). The last enabled admin cannot be demoted.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "user name (login)")
	role := fs.String("role", "", "admin, compliance (all calls), supervisor (own teams), auditor (audit trail only)")
	teams := fs.String("teams", "", "supervisor's teams, comma-separated")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	if err := required("role", *role); err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, false)
	if err != nil {
		return err
	}
	defer a.close()
	old, err := a.users.Get(ctx, *name)
	if err != nil {
		return err
	}
	newRole, newTeams := users.Role(*role), splitList(*teams)
	if err := a.users.SetRole(ctx, *name, newRole, newTeams); err != nil {
		return err
	}
	details := accessDetails(newRole, newTeams)
	details["old_role"] = string(old.Role)
	if len(old.Teams) > 0 {
		details["old_teams"] = strings.Join(old.Teams, ",")
	}
	if err := a.record(ctx, audit.UserChanged, "callrec user set-role", *name, details); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is now %s%s\n", *name, newRole, teamsSuffix(newTeams))
	return nil
}

// tokenCreate is `callrec token create`. Only the token goes to stdout.
func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", "Creates an API token for a machine and prints only the token, which is shown this once (TOKEN=$(callrec token create …)).", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "token name (shares the namespace of user names)")
	role := fs.String("role", "", "admin, compliance (all calls), supervisor (own teams), auditor (audit trail only)")
	teams := fs.String("teams", "", "supervisor's teams, comma-separated")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	if err := required("role", *role); err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, true)
	if err != nil {
		return err
	}
	defer a.close()
	r, t := users.Role(*role), splitList(*teams)
	token, err := a.users.CreateToken(ctx, *name, r, t)
	if err != nil {
		return err
	}
	details := accessDetails(r, t)
	details["kind"] = "api_token"
	if err := a.record(ctx, audit.UserAdded, "callrec token create", *name, details); err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "created API token %s (%s%s); it is not shown again\n", *name, r, teamsSuffix(t))
	return nil
}

// tokenList is `callrec token list`.
func tokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token list", "Lists API tokens (their names and access; the tokens themselves are not stored).", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	st, err := openUsers(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	ts, err := st.ListTokens(ctx)
	if err != nil {
		return err
	}
	return writeUserTable(stdout, "REVOKED", ts)
}

// tokenRevoke is `callrec token revoke`.
func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token revoke", "Revokes an API token: it stops authenticating at once. The name stays taken; create a replacement under a new name.", stderr)
	dataDir := fs.String("data-dir", "./data", "data directory")
	name := fs.String("name", "", "token name")
	if err := parseFlags(fs, args, nil); err != nil {
		return err
	}
	if err := required("name", *name); err != nil {
		return err
	}
	a, err := openAdmin(*dataDir, false)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.users.RevokeToken(ctx, *name); err != nil {
		return err
	}
	if err := a.record(ctx, audit.UserChanged, "callrec token revoke", *name, map[string]string{"kind": "api_token", "revoked": "true"}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked API token %s\n", *name)
	return nil
}

// required returns EINVALID if the flag's value is empty.
func required(flagName, value string) error {
	if value == "" {
		return callrec.Errorf(callrec.EINVALID, "--%s is required", flagName)
	}
	return nil
}

// readPassword returns CALLREC_PASSWORD or else the first line of stdin.
func readPassword(stdin io.Reader) (string, error) {
	if password := os.Getenv("CALLREC_PASSWORD"); password != "" {
		return password, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("no password: set CALLREC_PASSWORD or give it on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// accessDetails describes a role and teams for an audit entry.
func accessDetails(role users.Role, teams []string) map[string]string {
	d := map[string]string{"role": string(role)}
	if len(teams) > 0 {
		d["teams"] = strings.Join(teams, ",")
	}
	return d
}

// teamsSuffix is " (teams a,b)", or "" without teams.
func teamsSuffix(teams []string) string {
	if len(teams) == 0 {
		return ""
	}
	return " (teams " + strings.Join(teams, ",") + ")"
}

// writeUserTable writes users or tokens as an aligned table; stateColumn
// names the column of their Disabled field.
func writeUserTable(w io.Writer, stateColumn string, us []users.User) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tROLE\tTEAMS\t%s\tCREATED\n", stateColumn)
	for _, u := range us {
		teams := strings.Join(u.Teams, ",")
		if teams == "" {
			teams = "-"
		}
		disabled := "no"
		if u.Disabled {
			disabled = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, teams, disabled, u.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// openUsers opens the existing user store under dataDir; unlike Open, it
// does not create one (a mistyped --data-dir should not look like an empty
// installation).
func openUsers(dataDir string) (*users.Store, error) {
	path := filepath.Join(dataDir, "consolidation", "users.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no user store at %s: %w", path, err)
	}
	return users.Open(path)
}

// admin is the user store and the audit log, open for one change.
type admin struct {
	users *users.Store
	audit *audit.Log
}

// openAdmin opens the user store and the audit log under dataDir, creating
// them if create is set. Both are opened before anything changes, so a
// change is not made when its audit entry could not be written anyway.
func openAdmin(dataDir string, create bool) (*admin, error) {
	var (
		st  *users.Store
		err error
	)
	if create {
		var path string
		if path, err = consolidationPath(dataDir, "users.db"); err == nil {
			st, err = users.Open(path)
		}
	} else {
		st, err = openUsers(dataDir)
	}
	if err != nil {
		return nil, err
	}
	apath, err := consolidationPath(dataDir, "audit.db")
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	log, err := audit.Open(apath)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &admin{users: st, audit: log}, nil
}

// record appends an audit entry for a change made by a callrec command.
func (a *admin) record(ctx context.Context, typ audit.EventType, actor, target string, details map[string]string) error {
	_, err := a.audit.Append(ctx, audit.Entry{Type: typ, Actor: actor, Target: target, Details: details})
	return err
}

// close closes both stores.
func (a *admin) close() {
	_ = a.audit.Close()
	_ = a.users.Close()
}

// runAuditCommand checks the audit trail: `callrec audit verify`.
func runAuditCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return subcommandUsage("audit", args, auditUsage, stderr)
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
