package cluster

import (
	"bytes"
	"runtime"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

// lenStore is a Raft log that keeps each entry's data length only, and reads the entry
// back as that many bytes of its index's low byte: whatever holds the stored entries'
// bytes in memory is the cache in front of it.
type lenStore struct {
	mu   sync.Mutex
	lens map[uint64]int
}

func (s *lenStore) FirstIndex() (uint64, error) { return 1, nil }
func (s *lenStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.lens)), nil
}
func (s *lenStore) GetLog(i uint64, l *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.lens[i]
	if !ok {
		return raft.ErrLogNotFound
	}
	*l = raft.Log{Index: i, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, n)}
	return nil
}
func (s *lenStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }
func (s *lenStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		s.lens[l.Index] = len(l.Data)
	}
	return nil
}
func (s *lenStore) DeleteRange(lo, hi uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := lo; i <= hi; i++ {
		delete(s.lens, i)
	}
	return nil
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestEntryCacheHoldsNoLargeEntry: the cache of the latest Raft entries holds small
// entries only. It held the last 1,024 whatever their size: with writes near
// --max-body (16 MiB), up to 16 GiB on every node, for as long as they were among the
// latest. Every entry still reads back as stored, a large one from the log.
func TestEntryCacheHoldsNoLargeEntry(t *testing.T) {
	const big, small = 4 << 20, 100
	store := &lenStore{lens: map[uint64]int{}}
	c := newEntryCache(store)
	before := heapInUse()
	for i := uint64(1); i <= 32; i++ {
		size := small
		if i%2 == 0 {
			size = big
		}
		must(t, c.StoreLogs([]*raft.Log{{Index: i, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size)}}))
	}
	if held := int64(heapInUse()) - int64(before); held > 8<<20 {
		t.Fatalf("the cache holds %d MiB after 16 entries of 4 MiB were stored, want them left to the log", held>>20)
	}
	for i := uint64(1); i <= 32; i++ {
		var l raft.Log
		must(t, c.GetLog(i, &l))
		size := small
		if i%2 == 0 {
			size = big
		}
		if l.Index != i || !bytes.Equal(l.Data, bytes.Repeat([]byte{byte(i)}, size)) {
			t.Fatalf("entry %d read back as index %d, %d bytes; want %d bytes of %d", i, l.Index, len(l.Data), size, byte(i))
		}
	}
	runtime.KeepAlive(c)
}
