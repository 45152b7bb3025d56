package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/spf13/cobra"
)

func newVerifyCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "check every log record and the index of a stopped store",
		Long: `Verify checks the data directory DIR of a stopped store: its store id, every log
record's checksum, the log's offset files, the version every record carries, and the
on-disk index against one built afresh from the log. It changes nothing. What the next start fixes
by itself is a "note:"; damage is a "DAMAGE:" line naming segment file, offset and
position, and the exit code is 1 (3 if the store could not be checked).`,
		Args: wantArgs(1, 1, "DIR: the data directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return verify(cmd.Context(), args[0], stdout, stderr)
		},
	}
}

// verify checks a stopped store offline with engine.Verify and prints its report:
// what the next start takes care of as notes, damage as DAMAGE lines. It changes
// nothing.
func verify(ctx context.Context, dir string, stdout, stderr io.Writer) error {
	var bar *progressBar
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar = &progressBar{w: f, what: "verifying"}
	}
	if err := haveStore(dir); err != nil {
		return err
	}
	r, err := engine.Verify(ctx, dir, bar.update)
	if err != nil {
		return &exitError{exitTrouble, offlineErr(dir, err)}
	}
	fmt.Fprintf(stdout, "%s: %d records (%d events, %d links, %d deletions", r.Dir, r.Records, r.Events, r.Links, r.Deletes)
	if r.Voids > 0 {
		fmt.Fprintf(stdout, ", %d voided by a repair", r.Voids)
	}
	if r.Retentions > 0 {
		fmt.Fprintf(stdout, ", %d retention settings", r.Retentions)
	}
	if r.Erasures > 0 {
		fmt.Fprintf(stdout, ", %d erasures", r.Erasures)
	}
	if r.Gone > 0 {
		fmt.Fprintf(stdout, ", %d removed by a scavenge", r.Gone)
	}
	fmt.Fprintf(stdout, ") in %d segment(s), %d bytes\n", r.Segments, r.Bytes)
	for _, n := range r.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	if r.Agrees {
		fmt.Fprintf(stdout, "index at position %d agrees with the log\n", r.Index)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(stdout, "DAMAGE: %s\n", p)
	}
	if !r.OK() {
		if len(r.Damage) > 0 {
			fmt.Fprintf(stdout, "run \"pmd repair %s\" to see what a repair would do\n", dir)
		}
		return fmt.Errorf("%s is damaged: %d problem(s)", dir, len(r.Problems))
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// offlineErr is the error of an offline command on dir: a locked directory's says who
// holds it and what to do, as pmd serve's does (lockedErr).
func offlineErr(dir string, err error) error {
	return lockedErr(dir, err, "")
}

// haveStore refuses a directory that holds no store (engine.HaveStore) before an
// offline command locks or opens it (verify would leave its LOCK file there, scavenge a
// new store), saying why in the same words for each command.
func haveStore(dir string) error {
	if err := engine.HaveStore(dir); err != nil {
		return &exitError{exitTrouble, offlineErr(dir, err)}
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws the progress of a long offline command on a terminal.
type progressBar struct {
	w        io.Writer
	what     string
	lastDraw time.Time
	done     bool
}

// update draws the bar for done of total, a few times a second and at the end. A nil
// bar draws nothing.
func (b *progressBar) update(done, total int64) {
	if b == nil || b.done {
		return
	}
	final := done >= total
	if !final && time.Since(b.lastDraw) < 200*time.Millisecond {
		return
	}
	b.lastDraw = time.Now()
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	const width = 30
	filled := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%%", b.what, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), frac*100)
	if final {
		b.done = true
		fmt.Fprintln(b.w)
	}
}
