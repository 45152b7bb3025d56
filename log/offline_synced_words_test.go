package log

import (
	"os"
	"strings"
	"testing"
)

// TestOfflineCutNamesSyncedWritesAsSynced: the offline cut past framing damage in a
// segment synced whole (a later segment file follows it) takes the records of later
// writes past the damage, which had been synced, and says so. It said they were
// "written without an fsync after it", the words for the records a crash repair cuts
// past a lost page, which carry the unsynced flag.
func TestOfflineCutNamesSyncedWritesAsSynced(t *testing.T) {
	dir := t.TempDir()
	last := crashAfterRollover(t, dir, 1, false)
	reason := cutReasonPastZeroed(t, dir, last-2)
	if !strings.Contains(reason, "2 whole record(s) of later synced writes past the damage") || strings.Contains(reason, "without an fsync") {
		t.Errorf("the cut's reason %q, want it to name the 2 records past the damage as of later synced writes", reason)
	}
}

// TestOfflineCutNamesTheDamagedWritesRecords: the offline cut past framing damage in a
// segment synced whole takes the records past the damage of the damaged record's own
// write, which had been synced with the segment, and committed if a later synced write
// follows. It called them "the same unfinished write", the words for what a crash repair
// cuts of a torn write.
func TestOfflineCutNamesTheDamagedWritesRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		back uint64 // the damaged record, the first of its write of 3, is back positions before the last
		want string
	}{
		{"a later synced write follows", 5, "2 whole record(s) past the damage of the damaged record's write, which was committed and synced"},
		{"the segment's last write", 2, "2 whole record(s) past the damage of the damaged record's write, synced with the segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			last := crashAfterRollover(t, dir, 3, false)
			reason := cutReasonPastZeroed(t, dir, last-tc.back)
			if !strings.Contains(reason, tc.want) || strings.Contains(reason, "unfinished") {
				t.Errorf("the cut's reason %q, want it to say %q, and nothing unfinished", reason, tc.want)
			}
		})
	}
}

// cutReasonPastZeroed zeroes the record at pos and returns the reason of the offline
// repair plan's cut of its segment ("" if the plan cuts none there).
func cutReasonPastZeroed(t *testing.T, dir string, pos uint64) string {
	t.Helper()
	path, off, size := entryAt(t, dir, pos)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[off : off+int64(size)])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range plan.Actions {
		if a.Op == RepairCut && a.Segment == path {
			return a.Reason
		}
	}
	return ""
}
