package powercut_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd/internal/powercut"
)

// TestBeforeChange: the function hears of each change before it is made, and a change
// it refuses is not made.
func TestBeforeChange(t *testing.T) {
	d, backing, mnt := mount(t)
	var mu sync.Mutex // the disk's server calls the function on its own goroutines
	var ops []string
	d.BeforeChange(func(op, rel string) error {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op+" "+rel)
		if op == "rename" {
			return errors.New("refused")
		}
		return nil
	})
	if err := os.WriteFile(filepath.Join(mnt, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(mnt, "a"), filepath.Join(mnt, "b")); err == nil {
		t.Fatal("a refused rename succeeded")
	}
	d.BeforeChange(nil)
	if err := os.Remove(filepath.Join(mnt, "a")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"create a", "write a", "rename a"}; !slices.Equal(ops, want) {
		t.Errorf("heard %q, want %q", ops, want)
	}
	if _, err := os.Stat(filepath.Join(backing, "b")); !os.IsNotExist(err) {
		t.Errorf("the refused rename was made: %v", err)
	}
}

// TestUnsyncedNames: names made, renamed or removed stay listed until their directory is
// fsynced; changes inside a removed directory go with it.
func TestUnsyncedNames(t *testing.T) {
	d, _, mnt := mount(t)
	syncDir := func(name string) {
		t.Helper()
		f, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"sub", "gone"} {
		if err := os.Mkdir(filepath.Join(mnt, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"old", "sub/x", "gone/y"} {
		if err := os.WriteFile(filepath.Join(mnt, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(".")
	syncDir("sub")
	syncDir("gone")
	if got := d.UnsyncedNames(); len(got) != 0 {
		t.Fatalf("after the fsyncs: %q", got)
	}
	if err := os.Rename(filepath.Join(mnt, "old"), filepath.Join(mnt, "new")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "sub/x")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mnt, "gone")); err != nil {
		t.Fatal(err)
	}
	want := []string{"remove gone", "remove sub/x", "rename old to new"}
	if got := d.UnsyncedNames(); !slices.Equal(got, want) {
		t.Fatalf("unsynced %q, want %q", got, want)
	}
	syncDir("sub")
	if got, want := d.UnsyncedNames(), []string{"remove gone", "rename old to new"}; !slices.Equal(got, want) {
		t.Fatalf("after an fsync of sub: %q, want %q", got, want)
	}
	syncDir(".")
	if got := d.UnsyncedNames(); len(got) != 0 {
		t.Fatalf("after an fsync of the root: %q", got)
	}
}

// TestCutLosesUnsyncedAppendToAnOldFile: a file that was there before the disk was
// mounted, appended to and never fsynced, is cut back to its old size: the disk hears of
// every write (no FUSE passthrough, which sends writes around it).
func TestCutLosesUnsyncedAppendToAnOldFile(t *testing.T) {
	backing, mnt := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(backing, "old"), []byte("durable"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := powercut.Mount(backing, mnt)
	if err != nil {
		t.Skipf("no power cuts here: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Unmount(); err != nil {
			t.Error(err)
		}
	})
	f, err := os.OpenFile(filepath.Join(mnt, "old"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(" lost"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Cut(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "old")); err != nil || string(got) != "durable" {
		t.Fatalf("after the cut: %q, %v; want %q", got, err, "durable")
	}
}

// TestCutKeepsAFileRenamedOverADurableName: a file made, fsynced and renamed over a
// durable name before the directory's fsync is there after a Cut: a power cut leaves
// the name with the old file or the new one, never none (this model: the new one).
func TestCutKeepsAFileRenamedOverADurableName(t *testing.T) {
	d, _, mnt := mount(t)
	seg := filepath.Join(mnt, "seg")
	if err := os.WriteFile(seg, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{seg, mnt} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	f, err := os.Create(seg + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(seg+".tmp", seg); err != nil {
		t.Fatal(err)
	}
	if err := d.Cut(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(seg); err != nil || string(got) != "new" {
		t.Fatalf("after the cut: %q, %v; want %q", got, err, "new")
	}
}
