package log

import (
	"fmt"
	"os"
	"testing"
)

// TestRepairPowerCutBetweenRemoveAndTruncate interrupts the crash repair of a batch that
// spans several segments and lost its commit record: the repair removes the later
// segment files and truncates the segment the batch began in. A power cut may keep the
// truncate and lose some or all of the removals (a file system that logs only the
// fsynced inode), leaving a segment cut short that segment files follow. Those files
// hold only records of the unfinished batch, which began right after the cut: Open
// finishes the repair instead of refusing the store.
func TestRepairPowerCutBetweenRemoveAndTruncate(t *testing.T) {
	src := t.TempDir()
	opts := Options{SegmentSize: 300, Logger: quiet()}
	l := mustOpen(t, src, opts)
	want := writeBatches(t, l, nil, 2, 3)
	first := l.LastPosition() + 1
	writeBatches(t, l, nil, 12)
	last := l.LastPosition()
	mustClose(t, l)
	path, off, _ := entryAt(t, src, last)
	truncateFile(t, path, off) // the batch lost its commit record
	segs, _, err := listSegments(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if s.path > path {
			os.Remove(s.path) // the batch ended at a rollover: the next segment was not created yet
		}
	}
	if bpath, _, _ := entryAt(t, src, first); bpath == path {
		t.Fatal("the batch starts in the last segment")
	}
	segs, _, _ = listSegments(src)
	plan, err := planRepair(segs, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.remove) < 2 || plan.truncate == nil {
		t.Fatalf("plan removes %d files and truncates %v, want 2 or more and a truncate", len(plan.remove), plan.truncate)
	}
	// kept is how many of the removals (last file first) the power cut kept.
	for kept := 0; kept < len(plan.remove); kept++ {
		t.Run(fmt.Sprintf("%d of %d removals kept", kept, len(plan.remove)), func(t *testing.T) {
			dir := copyDir(t, src)
			segs, _, _ := listSegments(dir)
			p, err := planRepair(segs, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			p.remove = p.remove[:kept]
			if err := p.apply(dir, true); err != nil {
				t.Fatal(err)
			}
			reopenRepaired(t, dir, opts, want)
		})
	}
}
