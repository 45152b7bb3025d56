package log

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
)

// storeUID is the user of the stores of the tests below: nobody.
const storeUID = 65534

// chownAll gives every file and directory under dir to storeUID, as a store its own user
// wrote.
func chownAll(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, storeUID, storeUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkOwned fails for every file or directory under dir that is not storeUID's.
func checkOwned(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != storeUID || st.Gid != storeUID {
			t.Errorf("%s is %d:%d, want the store's user's %d:%d", path, st.Uid, st.Gid, storeUID, storeUID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Root writing in another user's log (sudo pmd scavenge, sudo pmd repair --yes, a pmd
// serve started as root once) leaves every file it creates to that user: a segment only
// root could read stopped the store from starting for its user.
func TestFilesOfRootTakeTheLogDirectorysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write in another user's directory")
	}
	opts := Options{SegmentSize: 500}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, dir string)
	}{
		{"writes that start segments, and a seal", func(t *testing.T, dir string) {
			l := mustOpen(t, dir, opts)
			writeBatches(t, l, nil, 4, 4, 4, 4, 4, 4)
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			mustClose(t, l)
		}},
		{"a rewrite", func(t *testing.T, dir string) {
			l := mustOpen(t, dir, opts)
			_, err := l.Rewrite(context.Background(), 1, RewriteOptions{Change: func(r *Record) *Record {
				if r.Kind != KindEvent {
					return nil
				}
				return goneOf(r)
			}})
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, l)
		}},
		{"a repair", func(t *testing.T, dir string) {
			path, off, _ := entryAt(t, dir, 2)
			flipBit(t, path, off+12)
			plan, err := PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(filepath.Join(t.TempDir(), "q.bin")); err != nil {
				t.Fatal(err)
			}
		}},
		{"the offsets directory of an older log", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, sidecarDir)); err != nil {
				t.Fatal(err)
			}
			mustClose(t, mustOpen(t, dir, opts))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, opts)
			writeBatches(t, l, nil, 4, 4, 4, 4)
			mustClose(t, l)
			chownAll(t, dir)
			tc.run(t, dir)
			checkOwned(t, dir)
		})
	}
}

// A log directory root creates in another user's directory is that user's, and so is
// every directory it makes on the way.
func TestLogDirectoryRootCreatesTakesItsParentsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write in another user's directory")
	}
	top := t.TempDir()
	chownAll(t, top)
	l := mustOpen(t, filepath.Join(top, "data", "log"), Options{SegmentSize: 500})
	writeBatches(t, l, nil, 4, 4, 4, 4)
	mustClose(t, l)
	checkOwned(t, top)
}

// copyOwned copies the tree src to dst as it is on disk, each file and directory with
// its owner: what a process killed at that moment leaves.
func copyOwned(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			err = os.MkdirAll(to, fi.Mode().Perm())
		} else {
			var b []byte
			if b, err = os.ReadFile(path); err == nil {
				err = os.WriteFile(to, b, fi.Mode().Perm())
			}
		}
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		return os.Lchown(to, int(st.Uid), int(st.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Root killed while it wrote in another user's log (a pmd serve started as root once,
// stopped with kill -9) can leave a file of its own there: a segment tidwall/wal started
// in the write, whose owner the write changes only after the fsync, or the offsets
// directory an Open made. The next Open as root gives them to the log's user; they
// stayed root's, and the store's user could not start the store ("permission denied"
// on the tail segment) until someone ran chown.
func TestRootKilledWhileWritingLeavesTheUserItsLog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write in another user's directory")
	}
	opts := Options{SegmentSize: 500}
	for _, tc := range []struct {
		name string
		kill func(t *testing.T, dir, killed string) // leaves in killed the log as root's kill leaves it
	}{
		{"in a write that started a segment", func(t *testing.T, dir, killed string) {
			l := mustOpen(t, dir, opts)
			write := l.writeBatch
			l.writeBatch = func(w *wal.Log, b *wal.Batch) error {
				before, _, err := listSegments(dir)
				if err != nil {
					return err
				}
				err = write(w, b)
				after, _, lerr := listSegments(dir)
				if _, serr := os.Stat(killed); errors.Is(serr, fs.ErrNotExist) && lerr == nil && len(after) > len(before) {
					copyOwned(t, dir, killed)
				}
				return err
			}
			writeBatches(t, l, nil, 4, 4, 4, 4)
			mustClose(t, l)
			if _, err := os.Stat(killed); err != nil {
				t.Fatalf("no write started a segment: %v", err)
			}
		}},
		{"in the open that made the offsets directory", func(t *testing.T, dir, killed string) {
			copyOwned(t, dir, killed)
			if err := os.Lchown(filepath.Join(killed, sidecarDir), 0, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, opts)
			writeBatches(t, l, nil, 4, 4)
			mustClose(t, l)
			chownAll(t, dir)
			killed := filepath.Join(t.TempDir(), "killed")
			tc.kill(t, dir, killed)
			// Root starts the store again after the kill, and stops it.
			mustClose(t, mustOpen(t, killed, opts))
			checkOwned(t, killed)
		})
	}
}

// Root opening a log gives away only the files it left itself: a segment or offsets
// directory of another user than the log directory's (a directory root:pmd, setgid, that
// the pmd user writes in) stays that user's, who must go on writing it.
func TestRootOpenLeavesAnotherUsersFilesAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write in another user's directory")
	}
	const writer = storeUID - 1
	dir := t.TempDir()
	opts := Options{SegmentSize: 500}
	l := mustOpen(t, dir, opts)
	writeBatches(t, l, nil, 4, 4, 4, 4)
	mustClose(t, l)
	chownAll(t, dir)
	segs, _, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	theirs := []string{filepath.Join(dir, sidecarDir)}
	for _, s := range segs {
		theirs = append(theirs, s.path)
	}
	for _, p := range theirs {
		if err := os.Lchown(p, writer, storeUID); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, mustOpen(t, dir, opts))
	for _, p := range theirs {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != writer {
			t.Errorf("%s is %d:%d after root's open, want its writer's %d", p, st.Uid, st.Gid, writer)
		}
	}
}
