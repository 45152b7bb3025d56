package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pmd-dev/pmd/cluster"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
	"github.com/spf13/cobra"
)

func newRepairCmd(stdout, stderr io.Writer) *cobra.Command {
	var yes bool
	var quarantine string
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "print what a repair of a stopped store would do; --yes does it",
		Long: `Repair prints what a repair of the stopped store in DIR would do, one line per change,
and changes nothing. With --yes it does it: the torn tail is cut, each damaged record
is replaced by a void record at the same position (so no other event moves). A damaged
sealed segment can hide a run of positions (pmd verify names them as positions X to Y):
a segment file missing after it (or the first one missing), or the segment cut short, lost the run's records, and
each of its positions gets a void record; a segment whose framing breaks (a damaged
length prefix, its offsets file lost) keeps each record past the damage that is framed
entry after entry from the entries before the damage and holds the record of its
position (a record whose length prefix alone is damaged is framed again), and every
position from the first it cannot frame so gets a void record: the preview says how many
records it keeps and how many it voids, and how many records that look intact it voids
as it cannot confirm them (found back from the segment's end, their start unknown: an
event's data may hold bytes that look like a record), so that you may restore the
segment from a copy instead (on a
cluster node, a damaged write after the log's last intact commit record that Raft
applies again at the next start, being past the node's snapshot and seed, is cut
instead, for Raft to write it again), every removed byte is kept in a quarantine file
(DIR/quarantine-<UTC time>.bin unless
--quarantine names another: the next scavenge of a store that has erased data removes
that one, so copy it out of DIR to keep it; a --quarantine file of another name stays), and the index is removed, to be rebuilt from the repaired
log at the next start. Damage that breaks the framing of the log's last segment (a zeroed
block, say) with records of later synced writes after it, which the start refuses, is cut:
the log ends at the last write committed before it and every byte from there goes to the
quarantine, the records past the damage with them (they look intact, but no entry start is
known past the damage to frame them from); the preview names the positions lost and says
that acknowledged writes are among them. Positions the index held on disk past the end of
the repaired log (cut there or not; with syncing off, a power cut explains their loss), or
that records past such damage show written (records that had been synced), are noted for
the next start, which fills them with void records, so that no later write takes them, and
reports their loss (on a cluster node Raft writes them again). A STORE_ID that does
not read is damage a repair does not change: repair says what to do about it and exits 1;
one this user may not read is not damage: repair says to run it as the store's user and
exits 3, changing nothing.`,
		Args: wantArgs(1, 1, "DIR: the data directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if quarantine != "" && !yes {
				return &usageError{"--quarantine is for a repair made with --yes"}
			}
			if err := checkQuarantine(args[0], quarantine); err != nil {
				return err
			}
			return repair(args[0], yes, quarantine, stdout, stderr)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "apply the repair (without it, only print what it would do)")
	cmd.Flags().StringVar(&quarantine, "quarantine", "", "file that keeps the removed bytes: outside DIR, or directly in it with a name that starts with quarantine (default DIR/quarantine-<UTC time>.bin)")
	return cmd
}

// repair repairs a stopped store offline with engine.PlanRepairWith (for a cluster
// node's directory, cluster.Replayed says which positions Raft writes again): without
// yes it prints what a repair would cut or void and changes nothing; with yes it does
// it, keeping the removed bytes in a quarantine file (quarantine, or a default name in
// dir).
func repair(dir string, yes bool, quarantine string, stdout, stderr io.Writer) error {
	if err := haveStore(dir); err != nil {
		return err
	}
	var bar *progressBar
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar = &progressBar{w: f, what: "reading the log"}
	}
	// A cluster node's directory: which positions its Raft state writes again.
	replayed := func() (uint64, error) { return cluster.Replayed(dir) }
	plan, err := engine.PlanRepairWith(dir, engine.RepairOptions{Progress: bar.update, Replayed: replayed})
	var ce *pmdlog.CorruptError
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("%w\nthis damage cannot be repaired: how far it reaches is unknown", err)
	case err != nil:
		return &exitError{exitTrouble, offlineErr(dir, err)}
	}
	defer plan.Close()
	// Damage the repair leaves (a STORE_ID that does not read): the store does not
	// start until the operator does what it says, so the command fails, after the log's
	// repair if there is one.
	var unrepaired error
	if len(plan.Unrepaired) > 0 {
		unrepaired = fmt.Errorf("the next start fails on damage that a repair does not change: %s", strings.Join(plan.Unrepaired, "; "))
	}
	lines := plan.Lines()
	if len(lines) == 0 {
		if unrepaired != nil {
			fmt.Fprintf(stdout, "%s: nothing in the log to repair\n", dir)
			return unrepaired
		}
		fmt.Fprintf(stdout, "%s: nothing to repair\n", dir)
		return nil
	}
	if !yes {
		fmt.Fprintf(stdout, "%s: a repair would\n", dir)
		for _, l := range lines {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
		fmt.Fprintf(stdout, "nothing changed; run \"pmd repair --yes %s\" to repair, keeping the removed bytes in a quarantine file\n", dir)
		return unrepaired
	}
	q := quarantine
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
	if engine.ScavengeRemoves(dir, q) {
		fmt.Fprintf(stdout, "the next scavenge of a store that has erased data removes %s: copy it out of %s to keep it\n", q, dir)
	}
	if err := plan.Close(); err != nil {
		return err
	}
	return unrepaired
}

// checkQuarantine refuses a --quarantine among the store's own files in dir: the
// quarantine is written through a temporary file renamed over it, so DIR/STORE_ID or
// DIR/FORMAT would no longer open, a file under DIR/index goes with the index the
// repair removes, and one under DIR/log is taken for a segment. Directly in dir, a
// quarantine's name starts with "quarantine", as pmd's own are, and no file of the
// store's does.
func checkQuarantine(dir, quarantine string) error {
	if quarantine == "" {
		return nil
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return &exitError{exitTrouble, err}
	}
	if r, err := filepath.EvalSymlinks(d); err == nil {
		d = r // else there is no store there, which the repair says
	}
	q, err := resolvedPath(quarantine)
	if err != nil {
		return &exitError{exitTrouble, err}
	}
	rel, err := filepath.Rel(d, q)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil // outside dir
	}
	if filepath.Dir(rel) != "." || !strings.HasPrefix(rel, "quarantine") {
		return &usageError{fmt.Sprintf("--quarantine %s is among the files of the store in %s: name a file outside it, "+
			"or directly in it with a name that starts with \"quarantine\"", quarantine, dir)}
	}
	return nil
}

// resolvedPath is path made absolute with the symbolic links of its directory resolved,
// so that a quarantine named through a link compares with the real store. The
// last element is kept as it is: a quarantine need not exist yet, and one that is a
// link is replaced by the quarantine, not written through.
func resolvedPath(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	d, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return p, nil // a directory that does not exist holds none of the store's files
	}
	return filepath.Join(d, filepath.Base(p)), nil
}
