package index

import (
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// eroFS is a file system mounted read-only: no file opens for writing.
type eroFS struct{ vfs.FS }

func (eroFS) Lock(name string) (io.Closer, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EROFS}
}

// TestReadOnlyOpenOnAReadOnlyFileSystem: a read-only open (pmd verify) of an index on a
// read-only file system (a backup mounted read-only) needs no LOCK file, which pebble
// cannot open for writing there; other errors of the lock stay errors.
func TestReadOnlyOpenOnAReadOnlyFileSystem(t *testing.T) {
	l, err := readOnlyFS{FS: eroFS{vfs.Default}}.Lock("LOCK")
	if err != nil {
		t.Fatalf("lock on a read-only file system: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := (readOnlyFS{FS: vfs.Default}).Lock(t.TempDir() + "/missing/LOCK"); err == nil {
		t.Fatal("lock in a missing directory: no error")
	}
}
