package log

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
				return &Record{Kind: KindGone}
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

// A log directory root creates in another user's directory is that user's.
func TestLogDirectoryRootCreatesTakesItsParentsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write in another user's directory")
	}
	top := t.TempDir()
	chownAll(t, top)
	l := mustOpen(t, filepath.Join(top, "log"), Options{SegmentSize: 500})
	writeBatches(t, l, nil, 4, 4, 4, 4)
	mustClose(t, l)
	checkOwned(t, top)
}
