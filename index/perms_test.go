package index

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestIndexFilesAreNotWorldReadable: the index holds stream names and ids, so its
// directory and files take the log's permissions (0750 and 0640, less the umask), not
// pebble's (0755 and 0644); an index left with pebble's by an older version is tightened
// when it is opened for writing.
func TestIndexFilesAreNotWorldReadable(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "new"
		if existing {
			name = "existing, loose"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "index")
			writeIndex(t, dir, 1, 100)
			if existing {
				// What an older version left.
				err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					if d.IsDir() {
						return os.Chmod(path, 0o755)
					}
					return os.Chmod(path, 0o644)
				})
				if err != nil {
					t.Fatal(err)
				}
				writeIndex(t, dir, 101, 100)
			}
			files := 0
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, err := d.Info()
				if err != nil {
					return err
				}
				// Group: read (and search) at most; others: nothing.
				if perm := fi.Mode().Perm(); perm&0o027 != 0 {
					t.Errorf("%s has mode %04o, want none of 0027", path, perm)
				}
				if !d.IsDir() {
					files++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if files < 3 {
				t.Fatalf("the index holds %d files: the test shows nothing", files)
			}
		})
	}
}

// writeIndex opens the index in dir for writing (making it if there is none), applies
// n events from position from, flushes them to its files and closes it.
func writeIndex(t *testing.T, dir string, from uint64, n int) {
	t.Helper()
	x, err := Open(dir, Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	applyEvents(t, x, from, n)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

// The uid and gid TestIndexOpenedByGroupMember opens an index as: nobody, in a group
// of its own.
const (
	memberUID = 65534
	memberGID = 4242
)

// TestIndexOpenedByGroupMember: a member of the index's group who does not own its
// files (an index an older version left under umask 002: directory 0775, files 0664)
// opens it, read-only (pmd verify) and for writing. Neither open fails on a chmod only
// the owner may do; the read-only open changes no permissions.
func TestIndexOpenedByGroupMember(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the index as another uid")
	}
	for _, mode := range []string{"read-only", "write"} {
		t.Run(mode, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "index")
			writeIndex(t, dir, 1, 100)
			// The test binary, where the member can run it.
			bin := filepath.Join(top, "index.test")
			copyFile(t, os.Args[0], bin, 0o755)
			for _, d := range []string{filepath.Dir(top), top} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// What an older version left under umask 002, in the group.
			before := map[string]fs.FileMode{}
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				perm := fs.FileMode(0o664)
				if d.IsDir() {
					perm = 0o775
				}
				before[path] = perm
				if err := os.Chown(path, 0, memberGID); err != nil {
					return err
				}
				return os.Chmod(path, perm)
			})
			if err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(bin, "-test.run=^TestIndexOpenedByGroupMemberHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PMD_INDEX_MEMBER_DIR="+dir, "PMD_INDEX_MEMBER_MODE="+mode)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: memberUID, Gid: memberGID, Groups: []uint32{}}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the %s open as uid %d gid %d: %v\n%s", mode, memberUID, memberGID, err, out)
			}
			if mode != "read-only" {
				return
			}
			for path, want := range before {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("the read-only open changed %s from %04o to %04o", path, want, got)
				}
			}
		})
	}
}

// TestIndexOpenedByGroupMemberHelper is the process TestIndexOpenedByGroupMember runs
// as the group member: it opens the index and, opened for writing, applies events.
func TestIndexOpenedByGroupMemberHelper(t *testing.T) {
	dir := os.Getenv("PMD_INDEX_MEMBER_DIR")
	if dir == "" {
		t.Skip("run by TestIndexOpenedByGroupMember")
	}
	readOnly := os.Getenv("PMD_INDEX_MEMBER_MODE") == "read-only"
	x, err := Open(dir, Options{CacheSize: 1 << 20, ReadOnly: readOnly})
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Position(); got != 100 {
		t.Errorf("the index holds position %d, want 100", got)
	}
	if !readOnly {
		applyEvents(t, x, 101, 100)
		if err := x.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		t.Fatal(err)
	}
}
