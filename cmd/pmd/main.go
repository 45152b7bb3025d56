// Command pmd is the pmd daemon and its command-line client.
//
//	pmd serve [--data DIR] [--addr HOST:PORT] [--config FILE] [--no-sync] [--cache SIZE] [--log-format text|json]
//	          [--max-body SIZE] [--memory-budget SIZE] [--shutdown-grace DURATION] [--scavenge-every DURATION] ...
//	pmd check-config FILE
//	pmd verify DIR
//	pmd repair DIR [--yes] [--quarantine FILE]
//	pmd scavenge DIR [--rate SIZE]
//	pmd append STREAM TYPE JSON [--expected V] [--id UUID] [--metadata JSON]
//	pmd link STREAM ID... [--expected V]
//	pmd read STREAM [--from N] [--backward] [--limit N]
//	pmd category NAME [--from N] [--backward] [--limit N]
//	pmd streams [--prefix P] [--after NAME] [--limit N]
//	pmd delete STREAM [--expected V]
//	pmd tail [--from N] [--types A,B | --stream S]
//	pmd process [NAME ID]
//	pmd parked NAME [--limit N]
//	pmd retry|skip NAME ID COMMAND
//	pmd subscriptions [NAME]
//	pmd subscriptions retry|skip NAME EVENT
//	pmd cluster status|join ID RAFT_ADDR|remove ID
//	pmd version
//	pmd completion bash|zsh|fish|powershell
//
// A command's flags go after its name, before or after its arguments (--addr, --token
// and --tls-ca anywhere on the line). The commands that talk to a running daemon take
// --addr (env PMD_ADDR, default 127.0.0.1:7070), --token (env PMD_TOKEN: the bearer
// token of a daemon started with --auth) and --tls-ca (env PMD_TLS_CA: the CAs to
// trust for an https daemon); those that answer with data take --json (print JSON for
// scripts). The flags of serve can also be set with environment variables, which
// `pmd serve --help` names: PMD_DATA, PMD_ADDR, PMD_CONFIG, PMD_NO_SYNC (true/false),
// PMD_CACHE, PMD_LOG_FORMAT, PMD_MAX_BODY, PMD_MEMORY_BUDGET, PMD_SHUTDOWN_GRACE, PMD_SCAVENGE_EVERY,
// those of access (docs/api.md), and PMD_NODE_ID, PMD_RAFT_ADDR, PMD_JOIN and
// PMD_CLUSTER_SECRET_FILE (docs/cluster.md); the Raft
// tuning flags (--raft-advertise, --http-advertise, --bootstrap-expect, --raft-snapshot-*,
// --raft-trailing-logs, --raft-heartbeat) have none. A flag given on the command line
// wins over the environment; a bad value that came from the environment is named by
// its variable (PMD_CACHE: "lots" is not a size).
//
// Exit codes: 0 done, 1 the command ran and failed (damage found, request refused, a
// config file with problems), 2 a command line that does not make sense, 3 the command
// could not run (daemon unreachable, store in use, a file it needs unreadable). pmd
// serve stopped by SIGINT or SIGTERM finishes the requests in flight, stops its process
// managers and subscriptions and closes the store, then exits 0 (1 if a step failed); a second signal
// meanwhile exits 1 at once (the log is safe: the next start replays it).
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pmd-dev/pmd/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exit codes
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed (damage found, request refused)
	exitUsage   = 2
	exitTrouble = 3 // the command could not run (daemon unreachable, store in use, unreadable files)
)

// defaultAddr is the daemon's address when neither --addr nor PMD_ADDR gives one.
const defaultAddr = "127.0.0.1:7070"

// usageError is a command line that does not make sense.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitError carries an exit code other than exitFailed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run runs the command line args and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	name := "pmd"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	var uerr *usageError
	var xerr *exitError
	var cerr *client.ConnectionError
	code := exitFailed
	switch {
	case errors.As(err, &uerr):
		code = exitUsage
	case errors.As(err, &xerr):
		code = xerr.code
	case errors.As(err, &cerr) && errors.As(err, new(x509.UnknownAuthorityError)):
		code = exitTrouble
		err = fmt.Errorf("%w (--tls-ca or PMD_TLS_CA names a file of the CAs to trust)", err)
	case errors.As(err, &cerr):
		code = exitTrouble
		err = fmt.Errorf("%w (is `pmd serve` running there? --addr or PMD_ADDR names it)", err)
	case errors.Is(err, client.ErrUnauthorized):
		// The daemon's message names the HTTP header; the command line has a flag.
		err = fmt.Errorf("%w (--token or PMD_TOKEN gives the token)", err)
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return code
}

// newRootCmd builds the command tree. Each run builds its own: commands hold the
// values of their flags.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "pmd",
		Short: "pmd is an event store with an embedded process manager",
		Long: `pmd is an event store with an embedded process manager.

"pmd serve" runs the daemon: the store, the process managers of its config file,
the HTTP API and the browser, on one port. The other commands either work on a
stopped store's directory (verify, repair, scavenge) or talk to a running daemon at
--addr.

Exit codes: 0 done; 1 the command ran and failed (a refused request, damage found, a
config file with problems); 2 a command line that does not make sense; 3 the command
could not run (daemon unreachable, store in use, a file it needs unreadable).`,
		// Arguments are checked by RunE, which names an unknown command.
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true, // run prints errors, prefixed with the command
		SilenceUsage:  true, // an error is not a reason to print the whole help
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(stderr)
				_ = cmd.Usage()
				return &usageError{"no command given"}
			}
			return unknownCommand(cmd, args[0])
		},
	}
	root.SuggestionsMinimumDistance = 2 // "raed" suggests read
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{flagError(err)} })
	g := &globals{}
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", envString("PMD_ADDR", defaultAddr), "address of the daemon, host:port or an http(s) URL (env PMD_ADDR)")
	pf.StringVar(&g.token, "token", os.Getenv("PMD_TOKEN"), "bearer token for a daemon started with --auth (env PMD_TOKEN)")
	// The help prints a flag's default: not the token PMD_TOKEN gave it.
	pf.Lookup("token").DefValue = ""
	pf.StringVar(&g.tlsCA, "tls-ca", envString("PMD_TLS_CA", ""), "trust the PEM certificates in this file, instead of the system's roots, for an https daemon (env PMD_TLS_CA)")
	g.tlsCAFlag = pf.Lookup("tls-ca")

	root.AddGroup(&cobra.Group{ID: "daemon", Title: "The daemon and its data directory:"},
		&cobra.Group{ID: "client", Title: "Talking to a running daemon:"})
	for _, c := range []*cobra.Command{newServeCmd(stdout, stderr), newCheckConfigCmd(stdout, stderr), newVerifyCmd(stdout, stderr), newRepairCmd(stdout, stderr), newScavengeCmd(stdout, stderr)} {
		c.GroupID = "daemon"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		newAppendCmd(g, stdout), newLinkCmd(g, stdout), newReadCmd(g, stdout), newCategoryCmd(g, stdout),
		newStreamsCmd(g, stdout), newDeleteCmd(g, stdout), newTailCmd(g, stdout, stderr), newProcessCmd(g, stdout),
		newParkedCmd(g, stdout), newOperateCmd(g, stdout, "retry"), newOperateCmd(g, stdout, "skip"),
		newSubscriptionsCmd(g, stdout),
		newClusterCmd(g, stdout),
	} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	root.AddCommand(newVersionCmd(stdout))
	// cobra's help command shows the root's help for a topic it does not know ("pmd help
	// raed"), and exits 0: it is the unknown command that "pmd raed" reports.
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" && c.Run != nil {
			help := c.Run
			c.Run = nil
			c.RunE = func(c *cobra.Command, args []string) error {
				if found, rest, err := root.Find(args); err == nil && found == root && len(rest) > 0 {
					return unknownCommand(root, rest[0])
				}
				help(c, args)
				return nil
			}
		}
	}
	// cobra's own completion command answers a missing or unknown shell with its help
	// and exit 0, which a script writing the output to a file would take for the script.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Use = "completion bash|zsh|fish|powershell"
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(_ *cobra.Command, args []string) error {
				msg := "want a shell: bash, zsh, fish or powershell"
				if len(args) > 0 {
					msg += fmt.Sprintf(", got %q", args[0])
				}
				return &usageError{msg}
			}
		}
	}
	return root
}

// flagError says what is wrong with a flag's value without the Go function that found
// it (pflag's "strconv.ParseInt: parsing ..."); other flag errors read well as they are.
func flagError(err error) string {
	var iv *pflag.InvalidValueError
	var num *strconv.NumError
	if !errors.As(err, &iv) || !errors.As(err, &num) {
		return err.Error()
	}
	what := "not valid"
	switch {
	case errors.Is(num.Err, strconv.ErrRange):
		what = "out of range"
	case iv.GetFlag().Value.Type() == "bool":
		what = "not true or false"
	case strings.HasPrefix(num.Func, "ParseInt"), strings.HasPrefix(num.Func, "ParseUint"):
		what = "not a whole number"
	}
	return fmt.Sprintf("--%s: %q is %s", iv.GetFlag().Name, iv.GetValue(), what)
}

// unknownCommand is the usage error for a command name that root does not know, with
// the commands whose names are close to it.
func unknownCommand(root *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := root.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &usageError{msg + `; run "pmd --help" for the commands`}
}

// wantArgs checks the number of positional arguments, between lo and hi (hi < 0: no
// limit), naming what they should be.
func wantArgs(lo, hi int, want string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || (hi >= 0 && len(args) > hi) {
			return &usageError{fmt.Sprintf("want %s, got %d argument(s)", want, len(args))}
		}
		return nil
	}
}

// newFlags returns a flag set that reports errors instead of exiting, for the commands
// that parse their own flags (serve, check-config).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pmd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

// envString returns the value of the environment variable key, or def.
func envString(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envBool returns the boolean environment variable key, or def.
func envBool(key string, def bool) (bool, error) {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &usageError{fmt.Sprintf("%s=%q is not a boolean (true or false)", key, v)}
	}
	return b, nil
}
