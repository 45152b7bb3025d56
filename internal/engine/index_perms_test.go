package engine

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestIndexPermissionErrorKeepsIndex: an index that cannot be opened for want of
// permission (another user's, say, opened by a member of its group) is not removed to
// be rebuilt: removing it may cost its owner the index, and a rebuild would meet the
// same permissions. Open fails naming the permission error and leaves the index whole.
func TestIndexPermissionErrorKeepsIndex(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, for chattr +i: a file even root may not open for writing")
	}
	dir := t.TempDir()
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, IndexDir)
	lock := filepath.Join(idx, "LOCK")
	if out, err := exec.Command("chattr", "+i", lock).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v %s", lock, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", lock).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", lock, err, out)
		}
	})
	before := names(t, idx)

	e, err = Open(dir, opts)
	if err == nil {
		e.Close()
		t.Fatal("Open succeeded with the index's LOCK immutable")
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Open: %v, want a permission error", err)
	}
	if after := names(t, idx); !slices.Equal(after, before) {
		t.Errorf("the index holds %v after the failed Open, want %v as before", after, before)
	}
}

// names lists the names in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	return ns
}
