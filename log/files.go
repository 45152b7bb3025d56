package log

import (
	"container/list"
	"os"
	"sync"
)

// fileCache keeps read-only segment files open for positional reads, at most max of
// them, closing the least recently used. A file handed out stays open until released,
// even if it is evicted meanwhile.
type fileCache struct {
	mu     sync.Mutex
	max    int
	closed bool
	files  map[uint64]*cachedFile // by segment first position
	lru    list.List              // of *cachedFile, most recent first
}

type cachedFile struct {
	key     uint64
	f       *os.File
	refs    int
	evicted bool
	elem    *list.Element
}

func newFileCache(max int) *fileCache {
	return &fileCache{max: max, files: make(map[uint64]*cachedFile)}
}

// acquire returns the open file of segment s; release it when done.
func (c *fileCache) acquire(s *segment) (*cachedFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cf, ok := c.files[s.first]; ok {
		cf.refs++
		c.lru.MoveToFront(cf.elem)
		return cf, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	cf := &cachedFile{key: s.first, f: f, refs: 1}
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
		cf.f.Close() // read-only: nothing to lose
	}
}

func (c *fileCache) release(cf *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.refs--
	if cf.refs == 0 && cf.evicted {
		cf.f.Close()
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
