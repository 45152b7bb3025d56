package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOfflineCommandsWithoutAStore: pmd repair, verify and scavenge of a directory that
// does not exist, of an empty one and of a file say alike that there is no store there
// and why, exit 3 (they could not run) and create nothing: repair said "pmd: repair:
// stat DIR: ..." of a missing one, "pmd: repair DIR: no log: ..." of an empty one and
// "open DIR/FORMAT: not a directory" of a file, and verify and scavenge named DIR/log
// for a directory that does not exist.
func TestOfflineCommandsWithoutAStore(t *testing.T) {
	top := t.TempDir()
	empty := filepath.Join(top, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(top, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, why string
	}{
		{"missing", filepath.Join(top, "missing"), "it does not exist"},
		{"empty", empty, "it holds no log directory (" + filepath.Join(empty, "log") + ")"},
		{"a file", file, "it is not a directory"},
	} {
		for _, cmd := range [][]string{{"repair"}, {"repair", "--yes"}, {"verify"}, {"scavenge"}} {
			t.Run(tc.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				code, out, errOut := runPMD(t, context.Background(), append(cmd, tc.dir)...)
				want := "pmd " + cmd[0] + ": no store at " + tc.dir + ": " + tc.why + "\n"
				if code != exitTrouble || errOut != want || out != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", code, out, errOut, exitTrouble, want)
				}
				if entries, _ := os.ReadDir(empty); len(entries) != 0 {
					t.Fatalf("%s left files in an empty directory: %v", cmd[0], entries)
				}
				if _, err := os.Stat(filepath.Join(top, "missing")); err == nil {
					t.Fatalf("%s made the missing directory", cmd[0])
				}
			})
		}
	}
}
