package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// entryCacheSize is how many of the latest Raft entries a node keeps in memory: Raft
// reads the entries it just stored, to replicate and apply them.
const entryCacheSize = 1024

// entryCacheMax is the largest entry data the cache keeps, in bytes: a write near
// --max-body (16 MiB) is read back from the log instead. Raft's own LogCache kept every
// one of the latest entries, whatever its size: up to 16 GiB on every node.
const entryCacheMax = 32 << 10

// entryCache keeps the latest small Raft entries in memory in front of the node's Raft
// log (at most entryCacheSize of them, of at most entryCacheMax bytes each); the
// others are read from the log.
type entryCache struct {
	raft.LogStore
	mu   sync.RWMutex
	ring []*raft.Log // an entry at its index modulo the length; nil where none is kept
}

// newEntryCache is the cache of the latest entries in front of the node's Raft log.
func newEntryCache(logs raft.LogStore) *entryCache {
	return &entryCache{LogStore: logs, ring: make([]*raft.Log, entryCacheSize)}
}

// IsMonotonic is the log's: Raft asks the store it is given (raft.MonotonicLogStore).
func (c *entryCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *entryCache) GetLog(index uint64, l *raft.Log) error {
	c.mu.RLock()
	cached := c.ring[index%uint64(len(c.ring))]
	c.mu.RUnlock()
	if cached != nil && cached.Index == index {
		*l = *cached
		return nil
	}
	return c.LogStore.GetLog(index, l)
}

func (c *entryCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores logs in the log, and keeps the small ones once they are stored.
func (c *entryCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		slot := &c.ring[l.Index%uint64(len(c.ring))]
		if len(l.Data)+len(l.Extensions) <= entryCacheMax {
			*slot = l
		} else {
			*slot = nil // the slot's older entry would be a miss anyway: let it go
		}
	}
	return nil
}

// DeleteRange forgets every cached entry (Raft deletes rarely: a compaction, a
// conflicting suffix) and deletes the range from the log.
func (c *entryCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	clear(c.ring)
	c.mu.Unlock()
	return c.LogStore.DeleteRange(lo, hi)
}
