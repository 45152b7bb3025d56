package powercut

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Disk is a directory served at a mount point, whose unsynced appends a Cut loses.
type Disk struct {
	backing, mountpoint string

	mu     sync.Mutex
	server *fuse.Server
	conn   uint32           // the FUSE connection's number: the minor of the mount's device
	synced map[string]int64 // relative path → bytes made durable, for files written since the last Cut
	// fresh are the files and directories made since their directory's last fsync: a
	// Cut removes them, as a power cut loses a directory entry that was never synced.
	fresh map[string]bool
	// unnamed are the renames and removals made since their directory's last fsync, by
	// the path they changed (UnsyncedNames).
	unnamed map[string]string
	// before, if set, hears of each change before it is made (BeforeChange).
	before func(op, rel string) error
}

// Mount serves backing at mountpoint (both existing directories).
func Mount(backing, mountpoint string) (*Disk, error) {
	d := &Disk{backing: backing, mountpoint: mountpoint, synced: map[string]int64{}, fresh: map[string]bool{}, unnamed: map[string]string{}}
	if err := d.mount(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Disk) mount() error {
	// What is there now is durable: a file's size, until an fsync says otherwise. Its
	// writes need not be heard, which passthrough sends around the disk.
	err := filepath.WalkDir(d.backing, func(path string, e iofs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d.backing, path)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.synced[rel] = fi.Size()
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("powercut: %w", err)
	}
	root, err := fs.NewLoopbackRoot(d.backing)
	if err != nil {
		return fmt.Errorf("powercut: %w", err)
	}
	server, err := fs.Mount(d.mountpoint, &node{LoopbackNode: root.(*fs.LoopbackNode), d: d}, &fs.Options{
		MountOptions: fuse.MountOptions{DirectMount: true, Name: "powercut", FsName: d.backing},
	})
	if err != nil {
		return fmt.Errorf("powercut: mount %s: %w", d.mountpoint, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.mountpoint, &st); err != nil {
		server.Unmount()
		return fmt.Errorf("powercut: %w", err)
	}
	d.mu.Lock()
	d.server, d.conn = server, unix.Minor(st.Dev)
	d.mu.Unlock()
	return nil
}

// Cut loses what was not synced: it unmounts (the processes using the disk must be
// gone), truncates every file to the bytes its last fsync covered (a file there at the
// last Mount or Cut, not fsynced since: its size then), and mounts again, with no cache
// of the old contents.
func (d *Disk) Cut() error { return d.CutKeeping(nil) }

// Synced returns how many bytes of the file rel (relative to the disk's root) a Cut would
// keep now: what its last fsync covered, or its size when it was not written through the
// disk since the last Mount or Cut.
func (d *Disk) Synced(rel string) (int64, error) {
	rel = filepath.Clean(rel)
	d.mu.Lock()
	n, ok := d.synced[rel]
	d.mu.Unlock()
	if ok {
		return n, nil
	}
	fi, err := os.Stat(filepath.Join(d.backing, rel))
	if err != nil {
		return 0, fmt.Errorf("powercut: %w", err)
	}
	return fi.Size(), nil
}

// ErrKeep is matched by the error of CutKeeping for a size it cannot keep.
var ErrKeep = errors.New("powercut: a power cut cannot keep that")

// CutKeeping is Cut, but keeps the first keep[rel] bytes of each file rel it names
// (relative to the disk's root), and its name (not a directory made since its parent's
// last fsync, which goes with what it holds, as in Cut): a power cut after the kernel wrote back
// part of what was written since the last fsync, which a power cut may, since ext4 and
// XFS write back dirty pages at their own pace. A size below what the file's last fsync
// covered (Synced) or past its end cannot be what a power cut leaves: it is refused with
// an error matching ErrKeep, before anything is unmounted or cut.
func (d *Disk) CutKeeping(keep map[string]int64) error {
	clean := make(map[string]int64, len(keep))
	for rel, n := range keep {
		rel = filepath.Clean(rel)
		synced, err := d.Synced(rel)
		if err != nil {
			return err
		}
		fi, err := os.Stat(filepath.Join(d.backing, rel))
		if err != nil {
			return fmt.Errorf("powercut: %w", err)
		}
		if n < synced || n > fi.Size() {
			return fmt.Errorf("%w: %d bytes of %s, which holds %d, %d of them synced", ErrKeep, n, rel, fi.Size(), synced)
		}
		clean[rel] = n
	}
	if err := d.Unmount(); err != nil {
		return err
	}
	d.mu.Lock()
	for rel, n := range clean {
		delete(d.fresh, rel)
		d.synced[rel] = n
	}
	var errs []error
	for rel := range d.fresh {
		if err := os.RemoveAll(filepath.Join(d.backing, rel)); err != nil {
			errs = append(errs, err)
		}
		delete(d.synced, rel)
	}
	clear(d.fresh)
	for rel, n := range d.synced {
		err := os.Truncate(filepath.Join(d.backing, rel), n)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	clear(d.synced)
	clear(d.unnamed)
	d.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("powercut: cut: %w", err)
	}
	return d.mount()
}

// Unmount stops serving the disk; its files stay in the backing directory. A disk
// still in use (a file open on it) is torn down all the same and the error says so:
// the FUSE server lives in the test's process, which would otherwise hang at exit,
// closing those files with nobody left to answer.
func (d *Disk) Unmount() error {
	d.mu.Lock()
	server, conn := d.server, d.conn
	d.server = nil
	d.mu.Unlock()
	if server == nil {
		return nil
	}
	err := server.Unmount()
	if err == nil {
		return nil
	}
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", conn)
	if _, serr := os.Stat(abort); serr != nil {
		_ = syscall.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, "")
	}
	_ = os.WriteFile(abort, []byte("1"), 0)
	_ = syscall.Unmount(d.mountpoint, syscall.MNT_DETACH)
	return fmt.Errorf("powercut: unmount %s (aborted it): %w", d.mountpoint, err)
}

// BeforeChange makes f hear of every change made through the disk before it is made:
// op is one of create, write, truncate, fsync, mkdir, rename, unlink, rmdir and
// fsyncdir, and rel the path it changes, relative to the disk's root. An error from f
// refuses the change (EIO), which is then not made: a test kills the process that
// makes it there, so that it dies just before its Nth change. nil stops it.
//
// To hear of writes, files opened while f is set are not passed through to the kernel
// (files opened before may be): every read of them goes through the disk's server, in
// the test's process. That process must then not map a file of the disk into memory:
// a page fault, waiting on the server, would stop a garbage collection that the server
// waits for.
func (d *Disk) BeforeChange(f func(op, rel string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.before = f
}

// change asks BeforeChange's function whether op on rel may be made.
func (d *Disk) change(op, rel string) syscall.Errno {
	d.mu.Lock()
	f := d.before
	d.mu.Unlock()
	if f != nil && f(op, rel) != nil {
		return syscall.EIO
	}
	return 0
}

// UnsyncedNames lists the names changed through the disk that no fsync of their
// directory made durable yet, sorted: files and directories made ("create NAME"), and
// renames and removals ("rename FROM to TO", "remove NAME"), each by the path it
// changed. A Cut keeps renames and removals all the same (the model is coarse there), so
// a test that must not depend on an unsynced name asks for this list instead.
func (d *Disk) UnsyncedNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for rel := range d.fresh {
		out = append(out, "create "+rel)
	}
	for _, what := range d.unnamed {
		out = append(out, what)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// renamedOrRemoved notes a rename or removal of the entry rel that its directory's
// fsync makes durable.
func (d *Disk) renamedOrRemoved(rel, what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unnamed[rel] = what
}

// written notes that rel is being written: before, its size was durable.
func (d *Disk) written(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.synced[rel]; ok {
		return
	}
	var n int64
	if fi, err := os.Stat(filepath.Join(d.backing, rel)); err == nil {
		n = fi.Size()
	}
	d.synced[rel] = n
}

// created notes a file made through the disk: none of it is durable yet, not even its
// name.
func (d *Disk) created(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.synced[rel] = 0
	d.fresh[rel] = true
}

// madeDir notes a directory made through the disk: its name is not durable yet.
func (d *Disk) madeDir(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fresh[rel] = true
}

// isFresh reports whether rel was made since its directory's last fsync.
func (d *Disk) isFresh(rel string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fresh[rel]
}

// named notes that the name rel is durable.
func (d *Disk) named(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.fresh, rel)
}

// dirSynced notes an fsync of the directory rel: the names in it are durable.
func (d *Disk) dirSynced(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for r := range d.fresh {
		if filepath.Dir(r) == rel {
			delete(d.fresh, r)
		}
	}
	for r := range d.unnamed {
		if filepath.Dir(r) == rel {
			delete(d.unnamed, r)
		}
	}
}

// fsynced notes that rel's size n is durable.
func (d *Disk) fsynced(rel string, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.synced[rel] = n
}

// truncated notes a truncation of rel to n: nothing past n survives.
func (d *Disk) truncated(rel string, n int64) {
	d.written(rel)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.synced[rel] = min(d.synced[rel], n)
}

// moved carries what is known of from (a file or a directory) to to.
func (d *Disk) moved(from, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for rel, n := range d.synced {
		if rel == from || strings.HasPrefix(rel, from+"/") {
			delete(d.synced, rel)
			d.synced[to+strings.TrimPrefix(rel, from)] = n
		}
	}
	for rel := range d.fresh {
		if rel == from || strings.HasPrefix(rel, from+"/") {
			delete(d.fresh, rel)
			d.fresh[to+strings.TrimPrefix(rel, from)] = true
		}
	}
}

// removed forgets rel (a file or a directory).
func (d *Disk) removed(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for r := range d.synced {
		if r == rel || strings.HasPrefix(r, rel+"/") {
			delete(d.synced, r)
		}
	}
	for r := range d.fresh {
		if r == rel || strings.HasPrefix(r, rel+"/") {
			delete(d.fresh, r)
		}
	}
	// The changes inside a removed directory are durable with its removal.
	for r := range d.unnamed {
		if strings.HasPrefix(r, rel+"/") {
			delete(d.unnamed, r)
		}
	}
}

// node is a loopback node that tells the disk what happens to its files.
type node struct {
	*fs.LoopbackNode
	d *Disk
}

// WrapChild makes every node of the tree a node.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), d: n.d}
}

// rel is the path of name in n relative to the disk's root, "." for the root.
func (n *node) rel(name string) string { return filepath.Clean(filepath.Join(n.Path(nil), name)) }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		if errno := n.d.change("truncate", n.rel("")); errno != 0 {
			return nil, 0, errno
		}
	}
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	rel := n.rel("")
	if flags&syscall.O_TRUNC != 0 {
		n.d.truncated(rel, 0)
	}
	return &file{LoopbackFile: fh.(*fs.LoopbackFile), d: n.d, rel: rel}, fuseFlags, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	rel := n.rel(name)
	if errno := n.d.change("create", rel); errno != 0 {
		return nil, nil, 0, errno
	}
	_, err := os.Lstat(filepath.Join(n.d.backing, rel))
	existed := err == nil
	inode, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	switch {
	case !existed:
		n.d.created(rel)
	case flags&syscall.O_TRUNC != 0:
		n.d.truncated(rel, 0)
	}
	return inode, &file{LoopbackFile: fh.(*fs.LoopbackFile), d: n.d, rel: rel}, fuseFlags, 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if pf, ok := f.(*file); ok {
		f = pf.LoopbackFile // the loopback node knows its own file type only
	}
	if _, ok := in.GetSize(); ok {
		if errno := n.d.change("truncate", n.rel("")); errno != 0 {
			return errno
		}
	}
	if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		n.d.truncated(n.rel(""), int64(size))
	}
	return 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.d.change("mkdir", n.rel(name)); errno != 0 {
		return nil, errno
	}
	inode, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.d.madeDir(n.rel(name))
	}
	return inode, errno
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dir{inner: fh, d: n.d, rel: n.rel("")}, fuseFlags, 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	from, to := n.rel(name), filepath.Join(newParent.EmbeddedInode().Path(nil), newName)
	if errno := n.d.change("rename", from); errno != 0 {
		return errno
	}
	// A name that was durable stays so whatever a rename puts under it: a power cut
	// leaves it the old file or the new one (this model: the new one), never none.
	_, err := os.Lstat(filepath.Join(n.d.backing, to))
	durable := err == nil && !n.d.isFresh(to)
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		return errno
	}
	n.d.removed(to)
	n.d.moved(from, to)
	if durable {
		n.d.named(to)
	}
	what := "rename " + from + " to " + to
	n.d.renamedOrRemoved(from, what)
	n.d.renamedOrRemoved(to, what)
	return 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	rel := n.rel(name)
	if errno := n.d.change("unlink", rel); errno != 0 {
		return errno
	}
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		return errno
	}
	n.d.removed(rel)
	n.d.renamedOrRemoved(rel, "remove "+rel)
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	rel := n.rel(name)
	if errno := n.d.change("rmdir", rel); errno != 0 {
		return errno
	}
	if errno := n.LoopbackNode.Rmdir(ctx, name); errno != 0 {
		return errno
	}
	n.d.removed(rel)
	n.d.renamedOrRemoved(rel, "remove "+rel)
	return 0
}

// file is a loopback file whose writes and fsyncs the disk hears of.
type file struct {
	*fs.LoopbackFile
	d   *Disk
	rel string
}

// PassthroughFd refuses FUSE passthrough (which a loopback file offers as root: the
// kernel then reads and writes the backing file itself) while a BeforeChange function
// is set, so that it hears of each write.
func (f *file) PassthroughFd() (int, bool) {
	f.d.mu.Lock()
	hear := f.d.before != nil
	f.d.mu.Unlock()
	if hear {
		return 0, false
	}
	return f.LoopbackFile.PassthroughFd()
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.d.change("write", f.rel); errno != 0 {
		return 0, errno
	}
	f.d.written(f.rel)
	return f.LoopbackFile.Write(ctx, data, off)
}

func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if errno := f.d.change("write", f.rel); errno != 0 {
		return 0, errno
	}
	f.d.written(f.rel)
	return f.LoopbackFile.Writev(ctx, data, off)
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if errno := f.d.change("write", f.rel); errno != 0 {
		return errno
	}
	f.d.written(f.rel)
	return f.LoopbackFile.Allocate(ctx, off, size, mode)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.d.change("fsync", f.rel); errno != 0 {
		return errno
	}
	if errno := f.LoopbackFile.Fsync(ctx, flags); errno != 0 {
		return errno
	}
	var a fuse.AttrOut
	if errno := f.LoopbackFile.Getattr(ctx, &a); errno != 0 {
		return errno
	}
	f.d.fsynced(f.rel, int64(a.Size))
	return 0
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		if errno := f.d.change("truncate", f.rel); errno != 0 {
			return errno
		}
	}
	if errno := f.LoopbackFile.Setattr(ctx, in, out); errno != 0 {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		f.d.truncated(f.rel, int64(size))
	}
	return 0
}

// dir is a loopback directory handle whose fsyncs the disk hears of.
type dir struct {
	inner fs.FileHandle
	d     *Disk
	rel   string
}

func (h *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return h.inner.(fs.FileReaddirenter).Readdirent(ctx)
}

func (h *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return h.inner.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (h *dir) Releasedir(ctx context.Context, flags uint32) {
	h.inner.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

func (h *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if errno := h.d.change("fsyncdir", h.rel); errno != 0 {
		return errno
	}
	if errno := h.inner.(fs.FileFsyncdirer).Fsyncdir(ctx, flags); errno != 0 {
		return errno
	}
	h.d.dirSynced(h.rel)
	return 0
}
