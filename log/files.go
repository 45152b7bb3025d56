package log

import (
	"container/list"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"
)

// fileCache keeps read-only segment files open for positional reads, at most max of
// them, closing the least recently used. A file handed out stays open until released,
// even if it is evicted meanwhile.
//
// A sealed segment's file is also mapped into memory, read-only: a read of one record
// (a stream's replay reads a few records scattered over the log) is then a copy from the
// page cache instead of a pread system call, which cost a third of a short replay. Sealed
// files never change in place (a scavenge renames a new file over one, and forget drops
// the old mapping once its readers are done); a file cut short under a mapping anyway
// faults on read, which readAt turns into an error instead of a crash.
type fileCache struct {
	mu     sync.Mutex
	max    int
	closed bool
	files  map[uint64]*cachedFile // by segment first position
	lru    list.List              // of *cachedFile, most recent first
	noMap  bool                   // read sealed files with pread too: BenchmarkRead's baseline
}

type cachedFile struct {
	key     uint64
	f       *os.File
	data    []byte // the file mapped, for a sealed segment; nil if not (yet) mapped
	sealed  bool   // opened as a sealed segment's file (mapped unless that failed)
	refs    int
	evicted bool
	elem    *list.Element
}

func newFileCache(max int) *fileCache {
	return &fileCache{max: max, files: make(map[uint64]*cachedFile)}
}

// acquire returns the open file of segment s; release it when done. sealed is the size
// of s if it is sealed, which maps the file; 0 if s is the tail, still growing.
func (c *fileCache) acquire(s *segment, sealed int64) (*cachedFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cf, ok := c.files[s.first]; ok {
		if cf.sealed || sealed == 0 {
			cf.refs++
			c.lru.MoveToFront(cf.elem)
			return cf, nil
		}
		// Opened as the tail, sealed since: its readers keep the unmapped file, the
		// next ones get a mapped one.
		c.evict(cf)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	cf := &cachedFile{key: s.first, f: f, refs: 1, sealed: sealed > 0}
	if sealed > 0 && !c.noMap {
		cf.mmap(sealed)
	}
	cf.elem = c.lru.PushFront(cf)
	c.files[s.first] = cf
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back().Value.(*cachedFile))
	}
	return cf, nil
}

func (c *fileCache) evict(cf *cachedFile) {
	c.lru.Remove(cf.elem)
	delete(c.files, cf.key)
	cf.evicted = true
	if cf.refs == 0 {
		cf.close()
	}
}

func (c *fileCache) release(cf *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.refs--
	if cf.refs == 0 && cf.evicted {
		cf.close()
	}
}

// forget drops the open file of the segment starting at first, if any, after a new file
// was renamed over it: the next acquire opens the new one.
func (c *fileCache) forget(first uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cf, ok := c.files[first]; ok {
		c.evict(cf)
	}
}

// open reports how many files are open, for tests.
func (c *fileCache) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// close closes every file not in use now and the others as they are released.
func (c *fileCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for c.lru.Len() > 0 {
		c.evict(c.lru.Back().Value.(*cachedFile))
	}
}

// mmap maps the first size bytes of the file. A file that cannot be mapped is read with
// pread instead: mapping is an optimisation, never a requirement.
func (cf *cachedFile) mmap(size int64) {
	if size <= 0 || int64(int(size)) != size {
		return
	}
	data, err := unix.Mmap(int(cf.f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return
	}
	cf.data = data
}

// close unmaps and closes the file; read-only, so nothing is lost.
func (cf *cachedFile) close() {
	if cf.data != nil {
		_ = unix.Munmap(cf.data)
		cf.data = nil
	}
	cf.f.Close()
}

// maxMappedRead is the largest read served from a mapping. The system call is what a
// mapping saves, which matters for small records only; and the mapped pages a read
// touches count in the process's resident memory (as page cache it can drop), which big
// records would inflate for no gain.
const maxMappedRead = 64 << 10

// readAt fills b from the file at off: from the mapping when it covers the range and b
// is small, else with pread. Like os.File.ReadAt, it fails with io.EOF (possibly
// wrapped) when the file ends before b is full.
func (cf *cachedFile) readAt(b []byte, off int64) error {
	if len(b) <= maxMappedRead && off >= 0 && off+int64(len(b)) <= int64(len(cf.data)) {
		return copyMapped(b, cf.data[off:])
	}
	_, err := cf.f.ReadAt(b, off)
	return err
}

// copyMapped copies src, mapped from a file, into dst. Were the file cut short under the
// mapping, the copy would fault (SIGBUS): the fault is turned into an error for this
// read only, as the file's end would be.
func copyMapped(dst, src []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("segment file ended under its mapping (%v): %w", r, io.EOF)
		}
	}()
	copy(dst, src)
	return nil
}
