// Command pmd is the pmd daemon and its command-line client.
//
//	pmd serve [--data DIR] [--addr HOST:PORT] [--config FILE] [--no-sync] [--log-format text|json]
//	pmd check-config FILE
//	pmd verify DIR
//	pmd repair [--yes] [--quarantine FILE] DIR
//	pmd append [--addr A] [--expected V] [--json] STREAM TYPE JSON
//	pmd read   [--addr A] [--json] [--from N] [--backward] [--limit N] STREAM
//	pmd tail   [--addr A] [--json] [--types A,B] [--stream S] [--from N]
//	pmd link   [--addr A] [--expected V] [--json] STREAM ID...
//	pmd process [--addr A] [--json] NAME ID
//
// Every flag of serve can also be set with an environment variable: PMD_DATA, PMD_ADDR,
// PMD_CONFIG, PMD_NO_SYNC (true/false), PMD_LOG_FORMAT. A flag given on the command line
// wins over the environment. The client commands read PMD_ADDR too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `pmd is an event store with an embedded process manager.

Usage:
  pmd serve [--data DIR] [--addr HOST:PORT] [--config FILE] [--no-sync] [--log-format text|json]
  pmd check-config FILE          check a config file without starting
  pmd verify DIR                 check every log record and the index of a stopped store
  pmd repair DIR [--yes]         print what a repair of a stopped store would cut; --yes
                                 does it, keeping the removed bytes (--quarantine FILE)

Talking to a running daemon (--addr, or PMD_ADDR; default 127.0.0.1:7070):
  pmd append STREAM TYPE JSON    append one event with JSON data
  pmd read STREAM                read a stream
  pmd tail [--types A,B]         follow the global log (or --stream S)
  pmd link STREAM ID...          link stored events into STREAM
  pmd process NAME ID            show one process

Every client command takes --json for machine-readable output.
Run "pmd COMMAND -h" for the flags of a command.
`

// exit codes
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed (damage found, request refused)
	exitUsage   = 2
	exitTrouble = 3 // the command could not run (daemon unreachable, unreadable files)
)

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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"serve":        serveCmd,
		"check-config": checkConfigCmd,
		"verify":       verifyCmd,
		"repair":       repairCmd,
		"append":       appendCmd,
		"read":         readCmd,
		"tail":         tailCmd,
		"link":         linkCmd,
		"process":      processCmd,
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "pmd: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	var uerr *usageError
	var xerr *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "pmd %s: %v\n", name, err)
		return exitUsage
	case errors.As(err, &xerr):
		fmt.Fprintf(stderr, "pmd %s: %v\n", name, err)
		return xerr.code
	default:
		fmt.Fprintf(stderr, "pmd %s: %v\n", name, err)
		return exitFailed
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
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
