package engine

import "testing"

// TestIsQuarantineTakesTheTemporaryFileOfACrashedRepair: a repair writes its quarantine
// file beside it first (log.QuarantineTmpExt) and renames it into place; a crash can leave
// that file, with the same bytes, which a scavenge of an erasing store must remove too.
// Other names stay the operator's.
func TestIsQuarantineTakesTheTemporaryFileOfACrashedRepair(t *testing.T) {
	for _, tc := range []struct {
		name  string
		isDir bool
		want  bool
	}{
		{"quarantine-20261129T120000Z.bin", false, true},
		{"quarantine-20261129T120000Z.bin.pmd-repair.tmp", false, true},
		{"quarantine-20261129T120000Z.bin.pmd-repair.tmp", true, false},
		{"quarantine-20261129T120000Z.bin.tmp", false, false},
		{"quarantine-20261129T120000Z.pmd-repair.tmp", false, false},
		{"quarantine-20261129T120000Z.bin.pmd-repair.tmp.pmd-repair.tmp", false, false},
		{"quarantine-20261129T120000.123456789Z", true, true},
		{"quarantine-20261129T120000.123456789Z.tmp", true, false},
	} {
		if got := isQuarantine(tc.name, tc.isDir); got != tc.want {
			t.Errorf("isQuarantine(%q, directory %v) = %v, want %v", tc.name, tc.isDir, got, tc.want)
		}
	}
}
