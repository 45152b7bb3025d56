package log

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRepairQuarantineFile: Apply adds its entries after what the quarantine file holds
// and leaves no temporary file (the file is written beside it and renamed into place,
// so that a crash leaves it whole or as it was), replacing one a crash left; it writes
// through a symbolic link, and refuses a path that is not a regular file before any
// segment changes.
func TestRepairQuarantineFile(t *testing.T) {
	old := []byte("pmd-quarantine 1 cut segment=00000000000000000001 offset=0 position=1 bytes=3 reason=\"earlier\"\nabc\n")
	for _, tc := range []struct {
		name string
		// setup makes the quarantine's path in q, and returns the file to read.
		setup   func(t *testing.T, q string) string
		before  []byte // what the file holds before the entries
		wantErr string
	}{
		{"new file", func(t *testing.T, q string) string { return q }, nil, ""},
		{"an earlier repair's file", func(t *testing.T, q string) string {
			writeFile(t, q, old)
			return q
		}, old, ""},
		{"a temporary file a crash left", func(t *testing.T, q string) string {
			writeFile(t, q+QuarantineTmpExt, []byte("pmd-quarantine 1 cut segment=torn"))
			return q
		}, nil, ""},
		{"a symbolic link", func(t *testing.T, q string) string {
			target := filepath.Join(t.TempDir(), "target.bin")
			writeFile(t, target, old)
			if err := os.Symlink(target, q); err != nil {
				t.Fatal(err)
			}
			return target
		}, old, ""},
		{"a directory", func(t *testing.T, q string) string {
			if err := os.Mkdir(q, 0o700); err != nil {
				t.Fatal(err)
			}
			return ""
		}, nil, "is not a regular file"},
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
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
