package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// newServeCmd wires serve (serve.go) into the command tree. serve parses its own flags
// with serveFlags, which also reads their defaults from the environment, so that its
// flags are defined and checked in one place, next to what they configure.
func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "run the daemon: the store, the process managers, the HTTP API and the browser",
		Args:  cobra.ArbitraryArgs, // serveFlags refuses arguments
		// serveFlags parses the flags, -h and --help included.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// --help goes to stdout, as every other command's does; the usage printed
			// after a bad flag stays on stderr, with the error.
			if _, err := serveFlags(args, io.Discard); errors.Is(err, flag.ErrHelp) {
				cmd.HelpFunc()(cmd, args)
				return nil
			}
			return serveCmd(cmd.Context(), args, stdout, stderr)
		},
	}
	// "pmd help serve" prints what "pmd serve --help" prints: serve's own flags.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		fmt.Fprintf(c.OutOrStdout(), "pmd serve: %s.\n\n", c.Short)
		_, _ = serveFlags([]string{"-h"}, c.OutOrStdout())
	})
	return cmd
}

func newCheckConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "check a config file of process managers and subscriptions without starting",
		Args:  wantArgs(1, 1, "FILE: the config file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return checkConfigCmd(cmd.Context(), args, stdout, stderr)
		},
	}
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of this pmd binary",
		Args:  wantArgs(0, 0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, version())
			return err
		},
	}
}

// version describes this binary from its build information: the module version (a
// tag for a released build, "(devel)" for one built from a checkout), the commit when
// the build recorded it, and the Go toolchain and platform.
func version() string {
	v := "pmd (unknown version)"
	bi, ok := debug.ReadBuildInfo()
	if ok {
		v = "pmd " + bi.Main.Version
		var rev, at, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
		if rev != "" {
			v += fmt.Sprintf(" (commit %s, %s%s)", rev, at, modified)
		}
	}
	return fmt.Sprintf("%s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
