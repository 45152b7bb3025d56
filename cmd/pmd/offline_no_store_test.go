package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOfflineCommandsWithoutAStore: pmd repair, verify and scavenge of a directory that
// does not exist, of an empty one, of a file, and of a directory whose log is not a
// store's say alike that there is no store there and why, exit 3 (they could not run)
// and create nothing: repair said "pmd: repair: stat DIR: ..." of a missing one, "pmd:
// repair DIR: no log: ..." of an empty one and "open DIR/FORMAT: not a directory" of a
// file, and verify and scavenge named DIR/log for a directory that does not exist. A
// directory holding log/syslog was taken for a format 1 store: verify passed it and
// left its LOCK, and scavenge made a store in it; one whose log is a file, scavenge
// failed on after making STORE_ID, index/ and LOCK in it.
func TestOfflineCommandsWithoutAStore(t *testing.T) {
	top := t.TempDir()
	mkdir := func(path string) {
		t.Helper()
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string) {
		t.Helper()
		mkdir(filepath.Dir(path))
		if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(top, "empty")
	mkdir(empty)
	file := filepath.Join(top, "file")
	write(file)
	syslog := filepath.Join(top, "syslog")
	write(filepath.Join(syslog, "log", "syslog"))
	logFile := filepath.Join(top, "logfile")
	write(filepath.Join(logFile, "log"))
	before := tree(t, top)
	for _, tc := range []struct {
		name, dir, why string
	}{
		{"missing", filepath.Join(top, "missing"), "it does not exist"},
		{"empty", empty, "it holds no FORMAT file and no log directory (" + filepath.Join(empty, "log") + ")"},
		{"a file", file, "it is not a directory"},
		{"log holds no segment", syslog, "it holds no FORMAT file, and its log directory (" + filepath.Join(syslog, "log") + ") holds no log segment"},
		{"log is a file", logFile, "it holds no FORMAT file, and its log (" + filepath.Join(logFile, "log") + ") is not a directory"},
	} {
		for _, cmd := range [][]string{{"repair"}, {"repair", "--yes"}, {"verify"}, {"scavenge"}} {
			t.Run(tc.name+"/"+strings.Join(cmd, " "), func(t *testing.T) {
				code, out, errOut := runPMD(t, context.Background(), append(cmd, tc.dir)...)
				want := "pmd " + cmd[0] + ": no store at " + tc.dir + ": " + tc.why + "\n"
				if code != exitTrouble || errOut != want || out != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", code, out, errOut, exitTrouble, want)
				}
				if after := tree(t, top); !slices.Equal(after, before) {
					t.Fatalf("%s changed the files under %s: %v, were %v", cmd[0], top, after, before)
				}
			})
		}
	}
}

// tree lists every path under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		paths = append(paths, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
