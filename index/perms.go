package index

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// loose are the permission bits the index's files and directory never keep: group write
// and all of others'. The index holds stream names and event ids, so it takes the
// log's permissions (0750 and 0640, less the umask) rather than pebble's (0755, 0644).
const loose = 0o027

// indexFS is the file system pebble opens the index with. A read-only open (pmd verify)
// changes no permissions: it may be a group member's, who does not own the files, and
// pebble takes its LOCK file even then.
func indexFS(readOnly bool, logger *slog.Logger) vfs.FS {
	if readOnly {
		return readOnlyFS{FS: vfs.Default}
	}
	return privateFS{FS: vfs.Default, logger: logger}
}

// readOnlyFS is pebble's file system for a read-only open, which may be of an index on
// a read-only file system (a backup or snapshot mounted read-only), or of one whose LOCK
// file this user may not open for writing (a copy made read-only to its owner, a group
// member's check): pebble opens its LOCK file for writing, which fails there. It needs
// no lock then: nothing can write the index on a read-only file system, and the caller
// of a read-only open keeps writers out otherwise (pmd verify and pmd repair hold the
// data directory's lock). Files this user may not read still fail the open.
type readOnlyFS struct {
	vfs.FS
}

func (r readOnlyFS) Lock(name string) (io.Closer, error) {
	l, err := r.FS.Lock(name)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
		return noLock{}, nil
	}
	return l, err
}

// noLock is the lock of an index that a read-only open cannot lock (readOnlyFS).
type noLock struct{}

func (noLock) Close() error { return nil }

// privateFS is pebble's file system with the log's permissions: the directories it
// makes and the files it creates lose the loose bits. A file it opens that another user
// owns (an index opened by a member of its group) keeps its bits, with a warning: only
// its owner may change them.
type privateFS struct {
	vfs.FS
	logger *slog.Logger
}

func (p privateFS) MkdirAll(dir string, perm os.FileMode) error {
	return p.FS.MkdirAll(dir, perm&^loose)
}

func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](p.logger, name)(p.FS.Create(name, category))
}

func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return private[vfs.File](p.logger, name)(p.FS.OpenReadWrite(name, category, opts...))
}

func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](p.logger, newname)(p.FS.ReuseForWrite(oldname, newname, category))
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	return private[io.Closer](p.logger, name)(p.FS.Lock(name))
}

// private returns a function that takes what opening the file at path returned and
// tightens the file's permissions, closing it if that fails. A file the process may not
// change the permissions of is left as it is, with a warning.
func private[F io.Closer](logger *slog.Logger, path string) func(F, error) (F, error) {
	return func(f F, err error) (F, error) {
		if err != nil {
			return f, err
		}
		err = tighten(path)
		switch {
		case errors.Is(err, fs.ErrPermission):
			warnLoose(logger, path, 1, err)
		case err != nil:
			var none F
			f.Close()
			return none, err
		}
		return f, nil
	}
}

// warnLoose warns that n files (path the first) keep permissions the process may not
// take the loose bits from.
func warnLoose(logger *slog.Logger, path string, n int, err error) {
	logger.Warn("pmd: an index file keeps group write or others' permissions: only its owner may change them", "path", path, "files", n, "err", err)
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
// reached through it. Files and a directory the process may not change the permissions
// of (another user's: the process is a member of their group) are left as they are,
// with one warning.
func tightenExisting(dir string, logger *slog.Logger) error {
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
	var (
		kept     int
		first    string
		firstErr error
	)
	for _, e := range append(entries, nil) {
		path := dir
		if e != nil {
			path = filepath.Join(dir, e.Name())
		}
		err := tighten(path)
		switch {
		case errors.Is(err, fs.ErrPermission):
			if kept == 0 {
				first, firstErr = path, err
			}
			kept++
		case err != nil:
			return err
		}
	}
	if kept > 0 {
		warnLoose(logger, first, kept, firstErr)
	}
	return nil
}
