package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCommandsOnAStoreThatLostItsLog: a format 1 store whose log lost every segment is
// refused by pmd serve and pmd scavenge (exit 3) with what is missing and what to do;
// pmd verify reports it as damage and pmd repair as damage it does not change (exit 1);
// none changes a file. They said there was no store there (verify, repair), or made a
// new, empty store, removing index.ckpt (serve, scavenge).
func TestCommandsOnAStoreThatLostItsLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "format1", "data"))); err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	if err := os.RemoveAll(logDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dir)
	lost := "the store's log is lost: " + logDir + " holds no log segment, but the directory holds index.ckpt"
	restore := "restore " + logDir + " from a copy of the store"
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout, or "" for none
	}{
		{[]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, exitTrouble, ""},
		{[]string{"scavenge", dir}, exitTrouble, ""},
		{[]string{"verify", dir}, exitFailed, "DAMAGE: " + lost},
		{[]string{"repair", dir}, exitFailed, dir + ": nothing in the log to repair\n"},
		{[]string{"repair", "--yes", dir}, exitFailed, dir + ": nothing in the log to repair\n"},
	} {
		t.Run(strings.Join(tc.args[:1], " "), func(t *testing.T) {
			// A serve that opened the directory would serve until this deadline.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			code, out, errOut := runPMD(t, ctx, tc.args...)
			if code != tc.code || (tc.out == "") != (out == "") || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q", code, out, errOut, tc.code, tc.out)
			}
			if tc.code == exitTrouble || tc.args[0] == "repair" {
				for _, want := range []string{lost, restore} {
					if !strings.Contains(errOut, want) {
						t.Errorf("stderr %q; want %q", errOut, want)
					}
				}
			}
			if after := tree(t, dir); !slices.Equal(after, before) {
				t.Fatalf("%s changed the files in %s: %v, were %v", tc.args[0], dir, after, before)
			}
		})
	}
}
