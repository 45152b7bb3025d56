package engine_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestStoreRootWroteOpensForItsUser: root writing in the data directory of the store's
// user (sudo pmd repair --yes after a crash, sudo pmd scavenge, a pmd serve started as
// root once) leaves every file and directory it creates to that user, so that the
// store's user opens the store afterwards with every event. A segment root started or
// rewrote, root's and 0640, stopped the store from starting for its user ("permission
// denied"); so did a store id, format file or index directory root created. The index's
// files stay root's: the user's open rebuilds the index from the log (TestIndexOfAnotherUser).
func TestStoreRootWroteOpensForItsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the store as another uid")
	}
	for _, tc := range []struct {
		name string
		root func(t *testing.T, dir string) // what root does once the store is the user's
	}{
		{"a new store in the user's empty directory", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, storeUID, storeUID); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, dir, 0, 40)
		}},
		{"writes that start segments", func(t *testing.T, dir string) {
			appendEvents(t, dir, 40, 60)
		}},
		{"a repair", func(t *testing.T, dir string) {
			flip(t, dir, 3)
			repairNow(t, dir)
		}},
		{"the upgrade of a store without a store id", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, engine.FormatFile), []byte("pmd data directory format 2\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, engine.StoreIDFile)); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
				t.Fatal(err)
			}
			appendEvents(t, dir, 40, 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "store")
			appendEvents(t, dir, 0, 40)
			giveAll(t, top)
			if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.root(t, dir)
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if filepath.Dir(path) == filepath.Join(dir, engine.IndexDir) {
					return nil // the index's files: package index's
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				st := fi.Sys().(*syscall.Stat_t)
				if st.Uid != storeUID || st.Gid != storeUID {
					t.Errorf("%s is %d:%d, want the store's user's", path, st.Uid, st.Gid)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			out := openAs(t, top, dir, storeUID, "open")
			if want := fmt.Sprintf("read %d events", countEvents(t, dir)); !regexp.MustCompile(want + `\b`).MatchString(out) {
				t.Errorf("the store's user's open printed %q, want %q", out, want)
			}
		})
	}
}

// TestNewStoreDirectoriesRootMakesAreTheUsers: root making a new store in the user's
// directory (sudo pmd serve --data ~user/pmd/data, ~user/pmd not there yet) gives the
// user every directory it makes on the way, not only the store's: the directories
// between took root's, the store took its parent's, root's, and so did every file in
// it, so that the user could not open the store.
func TestNewStoreDirectoriesRootMakesAreTheUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the store as another uid")
	}
	top := t.TempDir()
	giveAll(t, top)
	if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "pmd", "data")
	events := len(appendEvents(t, dir, 0, 20))
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if filepath.Dir(path) == filepath.Join(dir, engine.IndexDir) {
			return nil // the index's files: package index's
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != storeUID || st.Gid != storeUID {
			t.Errorf("%s is %d:%d, want the store's user's", path, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := openAs(t, top, dir, storeUID, "open")
	if want := fmt.Sprintf("read %d events", events); !strings.Contains(out, want) {
		t.Errorf("the store's user's open printed %q, want %q", out, want)
	}
}
