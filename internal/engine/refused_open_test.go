package engine_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRefusedOpenLeavesTheDirectory: an Open refused (a log that is a file, a FORMAT
// that does not read, a lock another Open holds, a directory this user may not write)
// leaves the directory as it found it: no FORMAT, STORE_ID, index/ or LOCK it made. One
// refused on its log left FORMAT, STORE_ID and index/ behind, and every refusal a LOCK,
// so that the next pmd verify took the directory for a store.
func TestRefusedOpenLeavesTheDirectory(t *testing.T) {
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string)
		is   error // what the error matches, nil for any
	}{
		{"log is a file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, engine.LogDir), "x\n")
		}, nil},
		{"log is a file, LOCK there", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, engine.LogDir), "x\n")
			writeFile(t, filepath.Join(dir, engine.LockFile), "")
		}, nil},
		{"FORMAT does not read", func(t *testing.T, dir string) {
			makeStoreIn(t, dir)
			if err := os.Remove(filepath.Join(dir, engine.LockFile)); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, engine.FormatFile), "pmd data directory format 99\n")
		}, engine.ErrFormat},
		{"locked", func(t *testing.T, dir string) {
			e, err := engine.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
		}, engine.ErrLocked},
		{"not writable", func(t *testing.T, dir string) {
			if os.Geteuid() == 0 {
				t.Skip("root writes in any directory")
			}
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(t, dir)
			before := listDir(t, dir)
			_, err := engine.Open(dir, opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Open: %v; want it refused (matching %v)", err, tc.is)
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("the refused Open (%v) changed the directory: %q, was %q", err, after, before)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}
