package log

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// TestRepairQuarantineFile: Apply adds its entries after what the quarantine file holds
// and leaves no temporary file (the file is written beside it and renamed into place,
// so that a crash leaves it whole or as it was), replacing one a crash left; it writes
// through a symbolic link, and refuses a path that is not a regular file before any
// segment changes. A link to a file not there yet creates that file; a file replaced
// keeps its mode (and owner, as root); a file of the operator's beside it is left alone.
func TestRepairQuarantineFile(t *testing.T) {
	old := []byte("pmd-quarantine 1 cut segment=00000000000000000001 offset=0 position=1 bytes=3 reason=\"earlier\"\nabc\n")
	for _, tc := range []struct {
		name string
		// setup makes the quarantine's path in q, and returns the file to read.
		setup   func(t *testing.T, q string) string
		before  []byte // what the file holds before the entries
		wantErr string
		mode    fs.FileMode // the file's mode afterwards, if not 0
	}{
		{"new file", func(t *testing.T, q string) string { return q }, nil, "", 0},
		{"an earlier repair's file", func(t *testing.T, q string) string {
			writeFile(t, q, old)
			return q
		}, old, "", 0},
		{"a temporary file a crash left", func(t *testing.T, q string) string {
			writeFile(t, q+QuarantineTmpExt, []byte("pmd-quarantine 1 cut segment=torn"))
			return q
		}, nil, "", 0},
		{"a symbolic link", func(t *testing.T, q string) string {
			target := filepath.Join(t.TempDir(), "target.bin")
			writeFile(t, target, old)
			if err := os.Symlink(target, q); err != nil {
				t.Fatal(err)
			}
			return target
		}, old, "", 0},
		{"a symbolic link to a file not there yet", func(t *testing.T, q string) string {
			target := filepath.Join(t.TempDir(), "target.bin")
			if err := os.Symlink(target, q); err != nil {
				t.Fatal(err)
			}
			return target
		}, nil, "", 0},
		{"a relative symbolic link to a file not there yet", func(t *testing.T, q string) string {
			if err := os.Symlink("target.bin", q); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(filepath.Dir(q), "target.bin")
		}, nil, "", 0},
		{"a file of mode 0640", func(t *testing.T, q string) string {
			writeFile(t, q, old)
			if err := os.Chmod(q, 0o640); err != nil {
				t.Fatal(err)
			}
			return q
		}, old, "", 0o640},
		{"the operator's own q.bin.tmp beside it", func(t *testing.T, q string) string {
			writeFile(t, q+".tmp", []byte("mine"))
			return q
		}, nil, "", 0},
		{"a directory", func(t *testing.T, q string) string {
			if err := os.Mkdir(q, 0o700); err != nil {
				t.Fatal(err)
			}
			return ""
		}, nil, "is not a regular file", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _, _ := damagedLog(t, Options{NoSync: true, SegmentSize: 500})
			q := filepath.Join(t.TempDir(), "q.bin")
			file := tc.setup(t, q)
			files := snapshot(t, dir)
			plan, err := PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = plan.Apply(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Apply: %v, want an error saying %q", err, tc.wantErr)
				}
				if !reflect.DeepEqual(snapshot(t, dir), files) {
					t.Fatal("a refused quarantine changed the log")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, tc.before) || !bytes.HasPrefix(b[len(tc.before):], []byte("pmd-quarantine 1 void ")) {
				t.Fatalf("the quarantine file holds %q..., want %q then the repair's entries", b[:min(len(b), 120)], tc.before)
			}
			if _, err := os.Lstat(file + QuarantineTmpExt); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the temporary file is still there: %v", err)
			}
			if file != q {
				if fi, err := os.Lstat(q); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Fatalf("the symbolic link was replaced: %v, %v", fi.Mode(), err)
				}
			}
			if fi, err := os.Stat(file); err != nil || tc.mode != 0 && fi.Mode().Perm() != tc.mode {
				t.Fatalf("the quarantine file's mode is %v (%v), want %v", fi.Mode().Perm(), err, tc.mode)
			}
			if strings.Contains(tc.name, "operator's") {
				if b, err := os.ReadFile(q + ".tmp"); err != nil || string(b) != "mine" {
					t.Fatalf("the operator's q.bin.tmp holds %q (%v), want \"mine\"", b[:min(len(b), 40)], err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRepairQuarantineKeepsOwner: a quarantine file another user owns keeps its owner
// when a repair run as root replaces it.
func TestRepairQuarantineKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	dir, _, _ := damagedLog(t, Options{NoSync: true, SegmentSize: 500})
	q := filepath.Join(t.TempDir(), "q.bin")
	writeFile(t, q, []byte("pmd-quarantine 1 cut segment=x offset=0 position=1 bytes=1 reason=\"x\"\nx\n"))
	if err := os.Chown(q, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(q); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(q)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4321 || st.Gid != 4322 {
		t.Fatalf("the quarantine file's owner is %d:%d, want 4321:4322", st.Uid, st.Gid)
	}
}
