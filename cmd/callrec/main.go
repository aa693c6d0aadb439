// Command callrec is the compliance call recorder for Twilio Flex: one
// binary with a subcommand per role.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"callrec"
)

const usage = `callrec — compliance-grade real-time call recorder for Twilio Flex

Usage:
  callrec <command> [flags]

Commands:
  run            every role in one process: media adapter, recorder, CTI path,
                 consolidation, web UI and API (--demo: simulated calls)
  lb             the WebSocket-aware load balancer in front of the adapters of a pool
  mediaadapter   the Twilio Media Streams adapter alone (forwards to a recorder)
  recorder       the recorder alone (accepts adapters on its link port)
  tracker        the tracker and Stream Manager alone (CTI events in, Start/Stop Stream out)
  eventadapter   the Event Streams adapter alone (Kinesis / webhook in, events to a tracker)
  consolidation  consolidation alone: join, search, playback, export, audit, web UI
  simulate       play Twilio: signed Media Streams, or whole Flex calls (--scenario)
  user           add|list|passwd|disable|enable|set-role: users of the UI and API
                 ("callrec user add --role admin" bootstraps the first admin)
  token          create|list|revoke: API tokens for machines
  pool           status | drain NODE: the pool's members; drain a node before a restart
  audit verify   check the audit trail's hash chain
  version        print the version

Every flag can also be set from the environment as CALLREC_<FLAG>, with
dashes as underscores (--data-dir → CALLREC_DATA_DIR); the Twilio auth token
also from TWILIO_AUTH_TOKEN. Run "callrec <command> --help" for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "callrec:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return runAllCommand(ctx, rest, stderr)
	case "mediaadapter":
		return runMediaAdapterCommand(ctx, rest, stderr)
	case "recorder":
		return runRecorderCommand(ctx, rest, stderr)
	case "tracker":
		return runTrackerCommand(ctx, rest, stderr)
	case "eventadapter":
		return runEventAdapterCommand(ctx, rest, stderr)
	case "simulate":
		return runSimulateCommand(ctx, rest, stdout, stderr)
	case "consolidation":
		return runConsolidationCommand(ctx, rest, stderr)
	case "lb":
		return runLBCommand(ctx, rest, stderr)
	case "pool":
		return runPoolCommand(ctx, rest, stdout, stderr)
	case "token":
		return runTokenCommand(ctx, rest, stdout, stderr)
	case "user":
		return runUserCommand(ctx, rest, os.Stdin, stdout, stderr)
	case "audit":
		return runAuditCommand(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "callrec", callrec.Version)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// newFlagSet returns a FlagSet whose usage explains the command.
func newFlagSet(name, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("callrec "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: callrec %s [flags]\n\n%s\n\nFlags (environment: CALLREC_<FLAG>):\n", name, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, then fills every flag not given on the command
// line from CALLREC_<FLAG> or from the extra variable named in aliases.
func parseFlags(fs *flag.FlagSet, args []string, aliases map[string]string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		for _, env := range []string{"CALLREC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")), aliases[f.Name]} {
			if v, ok := os.LookupEnv(env); ok && env != "" {
				if serr := fs.Set(f.Name, v); serr != nil && err == nil {
					err = fmt.Errorf("environment %s: %w", env, serr)
				}
				return
			}
		}
	})
	return err
}

// logFlags holds the logging flags every command has.
type logFlags struct{ level, format string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "json", "log format: json or text")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", l.level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or text", l.format)
	}
}
