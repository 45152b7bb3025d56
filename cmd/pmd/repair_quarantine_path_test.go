package main

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepairRefusesAQuarantineAmongTheStoresFiles: pmd repair --yes --quarantine of a
// file in DIR that is not a quarantine's (DIR/STORE_ID: the next start failed on it;
// under DIR/index: the repair removed it with the index; under DIR/log: the log took it
// for a segment) is a usage error that changes nothing; a quarantine directly in DIR
// under a name of its own is made.
func TestRepairRefusesAQuarantineAmongTheStoresFiles(t *testing.T) {
	for _, tc := range []struct {
		q  string // in DIR
		ok bool
	}{
		{"STORE_ID", false},
		{"FORMAT", false},
		{"index/q.bin", false},
		{"log/00000000000000000100", false},
		{"log/../STORE_ID", false},
		{"quarantine-mine.bin", true},
	} {
		t.Run(tc.q, func(t *testing.T) {
			dir := storeDir(t)
			appendBytes(t, segment(dir), []byte{0x50, 1, 2, 3})
			before := snapshotDir(t, dir)
			q := filepath.Join(dir, tc.q)
			code, out, errOut := runPMD(t, context.Background(), "repair", dir, "--yes", "--quarantine", q)
			if tc.ok {
				if code != exitOK || !strings.Contains(out, "the removed bytes are in "+q) {
					t.Fatalf("exit %d:\n%s%s", code, out, errOut)
				}
				return
			}
			if code != exitUsage || !strings.Contains(errOut, "--quarantine") {
				t.Fatalf("exit %d, want %d naming --quarantine:\n%s%s", code, exitUsage, out, errOut)
			}
			if after := snapshotDir(t, dir); !maps.Equal(before, after) {
				t.Fatalf("the refused repair changed %s", dir)
			}
		})
	}
}
