package index

import (
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// loose are the permission bits the index's files and directory never keep: group write
// and all of others'. The index holds stream names and event ids, so it takes the
// log's permissions (0750 and 0640, less the umask) rather than pebble's (0755, 0644).
const loose = 0o027

// privateFS is pebble's file system with the log's permissions: the directories it
// makes and the files it creates lose the loose bits.
type privateFS struct{ vfs.FS }

func (p privateFS) MkdirAll(dir string, perm os.FileMode) error {
	return p.FS.MkdirAll(dir, perm&^loose)
}

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](name)(p.FS.Create(name, category))
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return private[vfs.File](name)(p.FS.OpenReadWrite(name, category, opts...))
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](newname)(p.FS.ReuseForWrite(oldname, newname, category))
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	return private[io.Closer](name)(p.FS.Lock(name))
}

// private returns a function that takes what opening the file at path returned and
// tightens the file's permissions, closing it if that fails.
func private[F io.Closer](path string) func(F, error) (F, error) {
	return func(f F, err error) (F, error) {
		if err != nil {
			return f, err
		}
		if err := tighten(path); err != nil {
			var none F
			f.Close()
			return none, err
		}
		return f, nil
	}
}

// tighten takes the loose bits from the permissions of the file or directory at path.
func tighten(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&loose != 0 {
		return os.Chmod(path, perm&^loose)
	}
	return nil
}

// tightenExisting tightens an index directory left with pebble's permissions by an
// older version, and the files in it. A directory without loose bits is left as it is:
// the files this version creates in it are tight, and an older version's cannot be
// reached through it.
func tightenExisting(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return err
	case fi.Mode().Perm()&loose == 0:
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := tighten(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return tighten(dir)
}
