package index

import (
	"io/fs"
	"os"
	"path/filepath"
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
			x, err := Open(dir, Options{CacheSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			applyEvents(t, x, 1, 100)
			if err := x.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
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
				if x, err = Open(dir, Options{CacheSize: 1 << 20}); err != nil {
					t.Fatal(err)
				}
				applyEvents(t, x, 101, 100)
				if err := x.Flush(); err != nil {
					t.Fatal(err)
				}
				if err := x.Close(); err != nil {
					t.Fatal(err)
				}
			}
			files := 0
			err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
