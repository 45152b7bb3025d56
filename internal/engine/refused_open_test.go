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
	"golang.org/x/sys/unix"
)

// TestRefusedOpenLeavesTheDirectory: an Open refused (a log that is a file, a FORMAT
// that does not read, a lock another Open holds, a directory this user may not write)
// leaves the directory as it found it: no FORMAT, STORE_ID or index/ it made. One
// refused on its log left them behind, so that the next pmd verify took the directory
// for a store. LOCK it leaves, the one that was there the same file
// (TestRefusedOpenKeepsLOCK).
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
			lock := filepath.Join(dir, engine.LockFile)
			lockBefore, _ := os.Stat(lock)
			before := withoutLOCK(listDir(t, dir))
			_, err := engine.Open(dir, opts)
			if err == nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Open: %v; want it refused (matching %v)", err, tc.is)
			}
			if after := withoutLOCK(listDir(t, dir)); !slices.Equal(after, before) {
				t.Errorf("the refused Open (%v) changed the directory: %q, was %q (LOCK aside)", err, after, before)
			}
			if lockBefore != nil {
				if fi, err := os.Stat(lock); err != nil || !os.SameFile(fi, lockBefore) {
					t.Errorf("the refused Open replaced or removed LOCK: %v", err)
				}
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

func withoutLOCK(names []string) []string {
	return slices.DeleteFunc(names, func(name string) bool { return name == engine.LockFile })
}

// TestRefusedOpenKeepsLOCK: a refused Open leaves the LOCK file it made. It removed it,
// the lock held, and unlocked it after: flock(2) locks the file a process opened, by the
// name, and a second process that opened LOCK before the removal and locked it after the
// unlock held the lock of a removed file, while a third Open made a new LOCK, locked it
// and opened the store too. The refused Open here reads a FORMAT that is a named pipe,
// and so waits, holding the lock, until the test writes it: in between, the test opens
// LOCK as that second process would.
func TestRefusedOpenKeepsLOCK(t *testing.T) {
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true}
	dir := t.TempDir()
	format := filepath.Join(dir, engine.FormatFile)
	if err := unix.Mkfifo(format, 0o600); err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	go func() {
		_, err := engine.Open(dir, opts)
		refused <- err
	}()
	type opened struct {
		f   *os.File
		err error
	}
	writer := make(chan opened, 1)
	go func() {
		// Blocks until the Open opens FORMAT to read it, the lock held.
		f, err := os.OpenFile(format, os.O_WRONLY, 0)
		writer <- opened{f, err}
	}()
	var w *os.File
	select {
	case o := <-writer:
		if o.err != nil {
			t.Fatal(o.err)
		}
		w = o.f
	case err := <-refused:
		// Let the writer's open return.
		if r, rerr := os.OpenFile(format, os.O_RDONLY|unix.O_NONBLOCK, 0); rerr == nil {
			if o := <-writer; o.f != nil {
				o.f.Close()
			}
			r.Close()
		}
		t.Fatalf("Open returned before it read FORMAT: %v", err)
	}
	// The second process, between its open of LOCK and its flock.
	second, err := os.OpenFile(filepath.Join(dir, engine.LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("LOCK while Open holds the lock: %v", err)
	}
	defer second.Close()
	if _, err := w.WriteString("pmd data directory format 99\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-refused; !errors.Is(err, engine.ErrFormat) {
		t.Fatalf("Open: %v; want it refused with ErrFormat", err)
	}
	if err := unix.Flock(int(second.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock of the LOCK opened during the refused Open: %v", err)
	}
	if err := os.Remove(format); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(dir, opts)
	if err == nil {
		e.Close()
		t.Fatal("Open succeeded while another process holds the lock of the LOCK it opened during a refused Open")
	}
	if !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("Open: %v; want ErrLocked", err)
	}
}
