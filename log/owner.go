package log

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// A file or directory pmd creates takes the owner of the directory it is created in when
// pmd runs as root and that directory is another user's: an operator's sudo pmd repair
// --yes or sudo pmd scavenge, or a pmd serve started as root once, must leave the store's
// user files it can read and write. A segment only root could read stopped the store from
// starting for its user ("permission denied"), with nothing but a chown to get it back.

// dirOwner returns the user and group a file created in dir must be given, and false when
// it needs none: pmd does not run as root, or dir is root's.
func dirOwner(dir string) (uid, gid int, ok bool, err error) {
	if os.Geteuid() != 0 {
		return 0, 0, false, nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, 0, false, err
	}
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return 0, 0, false, nil
	}
	return int(st.Uid), int(st.Gid), true, nil
}

// AdoptOwner gives f, a file just created in dir, dir's owner (see dirOwner). A file
// system that does not let root give files away (NFS with root squashing) refuses with
// a permission error, which is not one: root's files there are not root's anyway.
func AdoptOwner(f *os.File, dir string) error {
	uid, gid, ok, err := dirOwner(dir)
	if err != nil || !ok {
		return err
	}
	return ignorePermission(f.Chown(uid, gid))
}

// AdoptOwnerPath is AdoptOwner for the file or directory at path, created in its parent
// directory by code that does not hand out the file (tidwall/wal, MkdirAll).
func AdoptOwnerPath(path string) error {
	uid, gid, ok, err := dirOwner(filepath.Dir(filepath.Clean(path)))
	if err != nil || !ok {
		return err
	}
	return ignorePermission(os.Lchown(path, uid, gid))
}

// MkdirAll is os.MkdirAll, except that each directory it makes takes the owner of the
// directory it is made in (AdoptOwnerPath): root making a store under another user's
// directory (sudo pmd serve --data ~user/pmd/data, ~user/pmd not there yet) leaves that
// user every directory it makes on the way, and so the store's files. Adopting only the
// last one gave it its parent's owner, root, as every file made in it then.
func MkdirAll(path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	fi, err := os.Stat(path)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: path, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(path); parent != path {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(path, perm); err != nil {
		if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
			return nil // made meanwhile, by another process: not ours to give away
		}
		return err
	}
	return AdoptOwnerPath(path)
}

// AdoptLeft is AdoptOwnerPath for the file or directory at path if it is this
// process's, root's: what this process just made, or what a root process killed between
// making it and AdoptOwnerPath left. Another user's is left as it is (see
// adoptSegments): a directory root:pmd (setgid) holds the files the pmd user made, which
// root giving them to the directory's owner would turn root's.
func AdoptLeft(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return nil
	}
	return AdoptOwnerPath(path)
}

func ignorePermission(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return err
}

// adoptSegments gives the segments of segs that are this process's, root's, to the
// owner of dir, their directory (see dirOwner). A root process killed between
// tidwall/wal's start of a segment and the change of its owner (write) left it root's,
// and the store's user could not open the log. Another user's segment is left as it is:
// a log directory need not be its segments' writer's (root:pmd, setgid), and that user
// must keep writing them.
func adoptSegments(dir string, segs []segFile) error {
	uid, gid, ok, err := dirOwner(dir)
	if err != nil || !ok {
		return err
	}
	for _, s := range segs {
		if s.uid != os.Geteuid() || s.uid == uid && s.gid == gid {
			continue
		}
		if err := ignorePermission(os.Lchown(s.path, uid, gid)); err != nil {
			return err
		}
	}
	return nil
}
