package main

import (
	"context"
	"maps"
	"os"
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
		// via names what reaches DIR through a symbolic link to it: the store's
		// argument, or the quarantine's path.
		via string
	}{
		{q: "STORE_ID"},
		{q: "FORMAT"},
		{q: "index/q.bin"},
		{q: "log/00000000000000000100"},
		{q: "log/../STORE_ID"},
		{q: "quarantine-mine.bin", ok: true},
		{q: "STORE_ID", via: "store"},
		{q: "log/00000000000000000100", via: "quarantine"},
		{q: "quarantine-mine.bin", ok: true, via: "store"},
	} {
		t.Run(tc.q+" "+tc.via, func(t *testing.T) {
			dir := storeDir(t)
			appendBytes(t, segment(dir), []byte{0x50, 1, 2, 3})
			before := snapshotDir(t, dir)
			store, q := dir, filepath.Join(dir, tc.q)
			if tc.via != "" {
				link := filepath.Join(t.TempDir(), "store")
				if err := os.Symlink(dir, link); err != nil {
					t.Fatal(err)
				}
				if tc.via == "store" {
					store = link
				} else {
					q = filepath.Join(link, tc.q)
				}
			}
			code, out, errOut := runPMD(t, context.Background(), "repair", store, "--yes", "--quarantine", q)
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
