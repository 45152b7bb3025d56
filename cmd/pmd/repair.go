package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// repairCmd repairs a stopped store offline with engine.PlanRepair: without --yes it
// prints what a repair would cut or void and changes nothing; with --yes it does it,
// keeping the removed bytes in a quarantine file.
func repairCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("repair", stderr)
	yes := fset.Bool("yes", false, "apply the repair (without it, only print what it would do)")
	quarantine := fset.String("quarantine", "", "file that keeps the removed bytes (default DIR/quarantine-<UTC time>.bin)")
	// Flags may come before or after the directory.
	var dirs []string
	for {
		if err := parse(fset, args); err != nil {
			return err
		}
		if fset.NArg() == 0 {
			break
		}
		dirs = append(dirs, fset.Arg(0))
		args = fset.Args()[1:]
	}
	if len(dirs) != 1 {
		return &usageError{"want exactly one argument: the data directory"}
	}
	if *quarantine != "" && !*yes {
		return &usageError{"--quarantine is for a repair made with --yes"}
	}
	dir := dirs[0]
	plan, err := engine.PlanRepair(dir)
	var ce *pmdlog.CorruptError
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("%w\nthis damage cannot be repaired: how far it reaches is unknown", err)
	case err != nil:
		return &exitError{exitTrouble, offlineErr(err)}
	}
	defer plan.Close()
	lines := plan.Lines()
	if len(lines) == 0 {
		fmt.Fprintf(stdout, "%s: nothing to repair\n", dir)
		return nil
	}
	if !*yes {
		fmt.Fprintf(stdout, "%s: a repair would\n", dir)
		for _, l := range lines {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
		fmt.Fprintf(stdout, "nothing changed; run \"pmd repair --yes %s\" to repair, keeping the removed bytes in a quarantine file\n", dir)
		return nil
	}
	q := *quarantine
	if q == "" {
		q = engine.DefaultQuarantine(dir, time.Now())
	}
	fmt.Fprintf(stdout, "%s: repairing; the removed bytes go to %s\n", dir, q)
	for _, l := range lines {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	if err := plan.Apply(q); err != nil {
		return &exitError{exitTrouble, err}
	}
	fmt.Fprintf(stdout, "repaired; the removed bytes are in %s\n", q)
	return plan.Close()
}
