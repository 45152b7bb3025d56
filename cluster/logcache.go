package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// entryCacheSize is how many of the latest Raft entries a node keeps in memory: Raft
// reads the entries it just stored, to replicate and apply them, and a leader reads the
// last one for its term every CommitTimeout, for each follower, even when idle.
const entryCacheSize = 1024

// entryCacheBudget is the most entry data the cache holds, in bytes, but for the newest
// entry, which it keeps whatever its size. Raft's own LogCache held each of the latest
// entries whatever its size: with writes near --max-body (16 MiB), up to 16 GiB on
// every node.
const entryCacheBudget = 64 << 20

// entryCacheSmall is the size up to which an entry is let go only when entryCacheSize
// newer ones follow it: over the budget, the cache lets go of the larger ones first,
// oldest first. The small ones are at most entryCacheSize*entryCacheSmall bytes (32
// MiB), well within the budget.
const entryCacheSmall = 32 << 10

// entryCache keeps the latest Raft entries in memory in front of the node's Raft log:
// entryCacheSize of them, within entryCacheBudget bytes of data (but for the newest),
// and the type of each of them all the same. The others are read from the log.
type entryCache struct {
	raft.LogStore
	mu   sync.RWMutex
	ring []cachedEntry // an entry at its index modulo the length
	// bytes is the data the ring holds (entrySize of each log in it).
	bytes int
	// last is the newest entry stored, 0 if none since the cache started or forgot all.
	last uint64
	// shed is the index up to which the ring holds no entry over entryCacheSmall but
	// the newest: where the next search for one to let go starts.
	shed uint64
}

// cachedEntry is one of the latest entries: its index (0 where none), its type, and the
// entry if the cache keeps it.
type cachedEntry struct {
	index uint64
	typ   raft.LogType
	log   *raft.Log // nil once let go
}

// entrySize is what keeping l costs the cache's budget.
func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) }

// newEntryCache is the cache of the latest entries in front of the node's Raft log.
func newEntryCache(logs raft.LogStore) *entryCache {
	return &entryCache{LogStore: logs, ring: make([]cachedEntry, entryCacheSize)}
}

// IsMonotonic is the log's: Raft asks the store it is given (raft.MonotonicLogStore).
func (c *entryCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *entryCache) GetLog(index uint64, l *raft.Log) error {
	c.mu.RLock()
	e := c.ring[index%uint64(len(c.ring))]
	c.mu.RUnlock()
	if e.index == index && e.log != nil {
		*l = *e.log
		return nil
	}
	return c.LogStore.GetLog(index, l)
}

// typeOf is the type of the entry at index, if it is one of the latest stored (whether
// the cache keeps its data or not): false if the log must be read for it.
func (c *entryCache) typeOf(index uint64) (raft.LogType, bool) {
	c.mu.RLock()
	e := c.ring[index%uint64(len(c.ring))]
	c.mu.RUnlock()
	return e.typ, e.index == index && index != 0
}

func (c *entryCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores logs in the log, and keeps them once they are stored, letting go of
// older ones to stay within the budget.
func (c *entryCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.ring))
	for _, l := range logs {
		e := &c.ring[l.Index%n]
		if e.log != nil {
			c.bytes -= entrySize(e.log)
		}
		*e = cachedEntry{index: l.Index, typ: l.Type, log: l}
		c.bytes += entrySize(l)
	}
	c.last = logs[len(logs)-1].Index
	if c.bytes <= entryCacheBudget {
		return nil
	}
	// Let go of the large entries before the newest, oldest first, until within the
	// budget: the small ones alone are within it. Raft stores entries in index order
	// (DeleteRange comes before any entry stored again), so the search goes on from
	// where the last one stopped.
	from := c.shed + 1
	if c.last > n && from <= c.last-n {
		from = c.last - n + 1
	}
	for i := from; i < c.last && c.bytes > entryCacheBudget; i++ {
		e := &c.ring[i%n]
		if e.index == i && e.log != nil && entrySize(e.log) > entryCacheSmall {
			c.bytes -= entrySize(e.log)
			e.log = nil
		}
		c.shed = i
	}
	return nil
}

// DeleteRange forgets the cached entries in [lo, hi] and deletes the range from the
// log. Only those: a compaction after each snapshot deletes entries far behind the
// latest (TrailingLogs), and forgetting the newest there would have an idle leader read
// it from the log every CommitTimeout again; a conflicting suffix deleted takes its
// entries, and their types, with it.
func (c *entryCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	for i := range c.ring {
		if e := &c.ring[i]; e.index >= lo && e.index <= hi && e.index != 0 {
			if e.log != nil {
				c.bytes -= entrySize(e.log)
			}
			*e = cachedEntry{}
		}
	}
	if c.last >= lo && c.last <= hi {
		c.last = 0
	}
	if lo <= c.shed {
		c.shed = lo - 1
	}
	c.mu.Unlock()
	return c.LogStore.DeleteRange(lo, hi)
}
