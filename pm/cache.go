package pm

import (
	"container/list"
	"sync"
)

// entry is the fold of one process stream: the process (state and ledger) after the
// version it folded, and where its next write lands.
type entry struct {
	pid    string
	p      proc
	exists bool   // the stream has a visible event: a write expects next-1
	next   uint64 // the version the next write lands at
	snap   int64  // the version the newest snapshot covers, -1 for none
	// erasures is Store.Erasures as it was before the fold read anything, or before
	// the last check that found none of its facts erased (checkFactsErased): while
	// the store's count is the same, no fact of the fold was erased since.
	erasures uint64
}

// cache keeps the folds of the processes handled last, so that an event folds onto its
// process's state instead of replaying the stream. A worker takes an entry out while it
// handles the process and puts it back once its writes are in the store: an entry is
// never shared, and one whose write failed is not put back, so the next event of that
// process folds it again from the store.
type cache struct {
	mu    sync.Mutex
	limit int
	order *list.List // of *entry, most recently put first
	byPID map[string]*list.Element
}

func newCache(limit int) *cache {
	return &cache{limit: limit, order: list.New(), byPID: make(map[string]*list.Element)}
}

// take removes the fold of process pid from the cache and returns it, if it is there.
func (c *cache) take(pid string) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byPID[pid]
	if !ok {
		return nil, false
	}
	c.order.Remove(el)
	delete(c.byPID, pid)
	return el.Value.(*entry), true
}

// put keeps e, letting the process used longest ago go when the cache is full.
func (c *cache) put(e *entry) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byPID[e.pid]; ok {
		c.order.Remove(el)
	}
	c.byPID[e.pid] = c.order.PushFront(e)
	for c.order.Len() > c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byPID, last.Value.(*entry).pid)
	}
}
