package powercut_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd/internal/powercut"
)

// mount mounts a fresh disk, or skips the test where FUSE or mounting is refused.
func mount(t *testing.T) (*powercut.Disk, string, string) {
	t.Helper()
	backing, mnt := t.TempDir(), t.TempDir()
	d, err := powercut.Mount(backing, mnt)
	if err != nil {
		t.Skipf("no power cuts here: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return d, backing, mnt
}

// TestCutKeepsWhatWasSynced: after a Cut each file holds what its last fsync covered:
// appends after it are lost, a file never synced is empty, a rename carries the synced
// size along, and files not written since are untouched. A file or directory made after
// its directory's last fsync is gone.
func TestCutKeepsWhatWasSynced(t *testing.T) {
	d, backing, mnt := mount(t)
	write := func(name string, chunks ...string) *os.File {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(mnt, name), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if _, err := f.WriteString(c); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	sync := func(f *os.File) {
		t.Helper()
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	syncDir := func(name string) {
		t.Helper()
		f, err := os.Open(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		sync(f)
		f.Close()
	}

	if err := os.Mkdir(filepath.Join(mnt, "kept"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := write("log", "durable ")
	sync(log)
	write("log", "lost").Close()
	log.Close()

	write("never", "lost").Close()

	tmp := write("tmp", "renamed")
	sync(tmp)
	tmp.Close()
	if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "CURRENT")); err != nil {
		t.Fatal(err)
	}

	cut := write("cut", "0123456789")
	sync(cut)
	if err := cut.Truncate(4); err != nil {
		t.Fatal(err)
	}
	cut.WriteString("lost")
	cut.Close()

	// Names made after their directory's last fsync.
	syncDir(".")
	inKept := write("kept/file", "synced, but its name is not")
	sync(inKept)
	inKept.Close()
	write("unnamed", "made after the directory's fsync").Close()
	if err := os.Mkdir(filepath.Join(mnt, "gone"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := d.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(backing, "untouched"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Cut(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"log": "durable ", "never": "", "CURRENT": "renamed", "cut": "0123", "untouched": "kept"} {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s after the cut: %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"kept/file", "unnamed", "gone"} {
		if _, err := os.Stat(filepath.Join(mnt, name)); !os.IsNotExist(err) {
			t.Errorf("%s, never named durably, is still there after the cut (%v)", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "kept")); err != nil {
		t.Errorf("a directory named before its parent's fsync: %v", err)
	}
}

// TestUnmountInUse: a disk with a file still open is torn down anyway, with an error,
// and the file's close returns instead of hanging the process.
func TestUnmountInUse(t *testing.T) {
	d, _, mnt := mount(t)
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Unmount(); err == nil {
		t.Fatal("Unmount of a disk in use gave no error")
	}
	f.Close() // fails: the connection is gone; it must not block
}

// TestCutKeeping: a cut that keeps part of a file's unsynced tail leaves that prefix
// (and the file's name, never synced), and the other files as Cut does; one that would
// keep less than the file's last fsync covered, or more than it holds, is refused and
// cuts nothing.
func TestCutKeeping(t *testing.T) {
	d, _, mnt := mount(t)
	f, err := os.Create(filepath.Join(mnt, "seg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("synced "); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("first second"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(mnt, "other"), []byte("lost"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Synced("seg"); err != nil || n != 7 {
		t.Fatalf("Synced(seg) = %d, %v; want 7", n, err)
	}
	for _, n := range []int64{6, 20} {
		if err := d.CutKeeping(map[string]int64{"seg": n}); !errors.Is(err, powercut.ErrKeep) {
			t.Fatalf("CutKeeping of %d bytes of seg: %v, want ErrKeep", n, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "seg")); err != nil || string(got) != "synced first second" {
		t.Fatalf("after refused cuts seg holds %q (%v), want it whole", got, err)
	}
	if err := d.CutKeeping(map[string]int64{"seg": 12}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "seg")); err != nil || string(got) != "synced first" {
		t.Errorf("after the cut seg holds %q (%v), want %q", got, err, "synced first")
	}
	if _, err := os.Stat(filepath.Join(mnt, "other")); !os.IsNotExist(err) {
		t.Errorf("other, never synced, is still there after the cut (%v)", err)
	}
}
