package index

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// lockFailsFS is a file system where no LOCK file opens for writing, with err: EROFS
// mounted read-only, EACCES where this user may not write the file.
type lockFailsFS struct {
	vfs.FS
	err error
}

func (f lockFailsFS) Lock(name string) (io.Closer, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: f.err}
}

// TestReadOnlyOpenOnAReadOnlyFileSystem: a read-only open (pmd verify) of an index on a
// read-only file system (a backup mounted read-only), or whose LOCK file this user may
// not write (a copy made read-only to its owner: pmd verify reported it as damage, the
// index unreadable to this user, though this user owns it and may read it), needs no
// LOCK file, which pebble cannot open for writing there; other errors of the lock stay
// errors.
func TestReadOnlyOpenOnAReadOnlyFileSystem(t *testing.T) {
	for _, cause := range []error{syscall.EROFS, syscall.EACCES} {
		l, err := readOnlyFS{FS: lockFailsFS{vfs.Default, cause}}.Lock("LOCK")
		if err != nil {
			t.Fatalf("lock that cannot be opened for writing: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (readOnlyFS{FS: vfs.Default}).Lock(t.TempDir() + "/missing/LOCK"); err == nil {
		t.Fatal("lock in a missing directory: no error")
	}
}
