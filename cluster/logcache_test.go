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
// bytes in memory is the cache in front of it. It counts the reads of each entry.
type lenStore struct {
	mu    sync.Mutex
	lens  map[uint64]int
	reads map[uint64]int
}

func newLenStore() *lenStore {
	return &lenStore{lens: map[uint64]int{}, reads: map[uint64]int{}}
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
	s.reads[i]++
	n, ok := s.lens[i]
	if !ok {
		return raft.ErrLogNotFound
	}
	*l = raft.Log{Index: i, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, n)}
	return nil
}
func (s *lenStore) readsOf(i uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[i]
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

// TestEntryCacheKeepsToItsBudget: the cache of the latest Raft entries holds at most
// entryCacheBudget bytes of entries, whatever their size. raft.LogCache held the last
// 1,024 whatever their size: with writes near --max-body (16 MiB), up to 16 GiB on every
// node, for as long as they were among the latest. Every entry still reads back as
// stored, one the cache let go from the log.
func TestEntryCacheKeepsToItsBudget(t *testing.T) {
	const big, small, n = 4 << 20, 100, 64 // 128 MiB of large entries: twice the budget
	store := newLenStore()
	c := newEntryCache(store)
	size := func(i uint64) int {
		if i%2 == 0 {
			return big
		}
		return small
	}
	before := heapInUse()
	for i := uint64(1); i <= n; i++ {
		must(t, c.StoreLogs([]*raft.Log{{Index: i, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, size(i))}}))
	}
	if held := int64(heapInUse()) - int64(before); held > entryCacheBudget+4<<20 {
		t.Fatalf("the cache holds %d MiB after %d entries of 4 MiB were stored, want at most its budget of %d MiB", held>>20, n/2, entryCacheBudget>>20)
	}
	for i := uint64(1); i <= n; i++ {
		var l raft.Log
		must(t, c.GetLog(i, &l))
		if l.Index != i || !bytes.Equal(l.Data, bytes.Repeat([]byte{byte(i)}, size(i))) {
			t.Fatalf("entry %d read back as index %d, %d bytes; want %d bytes of %d", i, l.Index, len(l.Data), size(i), byte(i))
		}
	}
	for i := uint64(1); i <= n; i += 2 {
		if r := store.readsOf(i); r != 0 {
			t.Errorf("small entry %d was read from the log %d times, want it kept: the large ones go first", i, r)
		}
	}
	runtime.KeepAlive(c)
}

// TestEntryCacheServesTheNewestEntry: the newest entry is read from memory whatever its
// size. Raft reads it again and again: a leader reads the entry before each follower's
// next one, for its term, every CommitTimeout (50-100 ms) even when idle, and an entry
// over 32 KiB was read and checked whole from the log each time (a 4 MiB one 50 times in
// 2 s on a leader of 3 nodes).
func TestEntryCacheServesTheNewestEntry(t *testing.T) {
	// The entries share their bytes: the cache counts each entry's length.
	data := make([]byte, 16<<20)
	tests := []struct {
		name    string
		batches [][]int // the sizes of the entries of each StoreLogs, in order
	}{
		{"one entry of 16 MiB", [][]int{{16 << 20}}},
		{"a 16 MiB entry after small ones", [][]int{{100, 100}, {16 << 20}}},
		{"a 4 MiB entry after the budget is full", [][]int{{4 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20}, {16 << 20, 16 << 20, 16 << 20}, {4 << 20}}},
		{"the last of a batch over the budget", [][]int{{16 << 20, 16 << 20, 16 << 20, 16 << 20, 16 << 20, 16 << 20}}},
		{"a small entry after large ones", [][]int{{16 << 20, 16 << 20, 16 << 20, 16 << 20, 16 << 20}, {100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newLenStore()
			c := newEntryCache(store)
			var last uint64
			var size int
			for _, b := range tt.batches {
				logs := make([]*raft.Log, len(b))
				for j, n := range b {
					last++
					logs[j] = &raft.Log{Index: last, Term: 3, Type: raft.LogCommand, Data: data[:n]}
					size = n
				}
				must(t, c.StoreLogs(logs))
			}
			var l raft.Log
			for range 25 {
				must(t, c.GetLog(last, &l))
			}
			if r := store.readsOf(last); r != 0 {
				t.Fatalf("the newest entry (%d, %d bytes) was read from the log %d times of 25, want none", last, size, r)
			}
			if l.Index != last || l.Term != 3 || len(l.Data) != size {
				t.Fatalf("entry %d read back as index %d term %d, %d bytes; want term 3, %d bytes", last, l.Index, l.Term, len(l.Data), size)
			}
			if c.bytes > max(entryCacheBudget, size) {
				t.Fatalf("the cache holds %d MiB, over its budget of %d MiB and the newest entry's %d MiB", c.bytes>>20, entryCacheBudget>>20, size>>20)
			}
		})
	}
}

// TestEntryCacheKnowsTheTypeOfEveryLatestEntry: the cache tells the type of each of
// the latest entries, those whose bytes it let go too, without reading it from the log.
// appliedThrough, on every response of a node in a cluster, read an entry whole (up to
// 16 MiB, checked) for its type only.
func TestEntryCacheKnowsTheTypeOfEveryLatestEntry(t *testing.T) {
	data := make([]byte, 16<<20)
	store := newLenStore()
	c := newEntryCache(store)
	types := []raft.LogType{raft.LogNoop, raft.LogCommand, raft.LogBarrier, raft.LogConfiguration}
	var logs []*raft.Log
	for i := uint64(1); i <= 2*entryCacheSize; i++ {
		n := 100
		if i%16 == 0 {
			n = len(data)
		}
		logs = append(logs, &raft.Log{Index: i, Type: types[i%4], Data: data[:n]})
	}
	for i := 0; i < len(logs); i += 100 {
		must(t, c.StoreLogs(logs[i:min(i+100, len(logs))]))
	}
	for i := uint64(1); i <= 2*entryCacheSize; i++ {
		typ, ok := c.typeOf(i)
		if latest := i > entryCacheSize; ok != latest || ok && typ != types[i%4] {
			t.Fatalf("typeOf(%d) = %v, %v; want %v, %v", i, typ, ok, types[i%4], latest)
		}
	}
	if _, ok := c.typeOf(2*entryCacheSize + 1); ok {
		t.Fatalf("typeOf an entry past the last says it knows it")
	}
	must(t, c.DeleteRange(2*entryCacheSize-10, 2*entryCacheSize))
	if _, ok := c.typeOf(2 * entryCacheSize); ok {
		t.Fatalf("typeOf a deleted entry says it knows it")
	}
	for i := uint64(1); i <= 2*entryCacheSize; i++ {
		if r := store.readsOf(i); r != 0 {
			t.Fatalf("entry %d was read from the log %d times, want none", i, r)
		}
	}
}

// TestEntryCacheStoresWithoutAllocating: keeping an entry costs no allocation and no
// copy on Raft's write path.
func TestEntryCacheStoresWithoutAllocating(t *testing.T) {
	c := newEntryCache(nopStore{})
	data := make([]byte, 8<<20)
	logs := make([]*raft.Log, 16)
	for i := range logs {
		logs[i] = &raft.Log{Type: raft.LogCommand, Data: data}
	}
	next := uint64(1)
	allocs := testing.AllocsPerRun(100, func() {
		for _, l := range logs {
			l.Index = next
			next++
		}
		if err := c.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("StoreLogs of 16 entries allocated %v times, want none", allocs)
	}
}

// nopStore is a Raft log that stores nothing.
type nopStore struct{ raft.LogStore }

func (nopStore) StoreLogs([]*raft.Log) error { return nil }

// TestEntryCacheKeepsTheLatestPastACompaction: the compaction after each snapshot
// deletes entries far behind the latest ones (TrailingLogs); the cache keeps serving the
// newest and knowing the types of the latest, or an idle leader reads its last entry
// (up to 16 MiB) from the log every CommitTimeout again. A conflicting suffix deleted is
// forgotten, its types too.
func TestEntryCacheKeepsTheLatestPastACompaction(t *testing.T) {
	data := make([]byte, 16<<20)
	store := newLenStore()
	c := newEntryCache(store)
	const last = 3 * entryCacheSize
	for i := uint64(1); i <= last; i += 100 {
		var logs []*raft.Log
		for j := i; j < i+100 && j <= last; j++ {
			n := 100
			if j == last {
				n = len(data)
			}
			logs = append(logs, &raft.Log{Index: j, Term: 2, Type: raft.LogCommand, Data: data[:n]})
		}
		must(t, c.StoreLogs(logs))
	}
	must(t, c.DeleteRange(1, last-entryCacheSize-10)) // a compaction
	var l raft.Log
	for range 25 {
		must(t, c.GetLog(last, &l))
	}
	if r := store.readsOf(last); r != 0 || len(l.Data) != len(data) {
		t.Fatalf("after a compaction the newest entry was read from the log %d times of 25 (%d bytes back), want none", r, len(l.Data))
	}
	if _, ok := c.typeOf(last - 5); !ok {
		t.Fatalf("after a compaction typeOf(%d) is not known", last-5)
	}
	must(t, c.DeleteRange(last-5, last)) // a conflicting suffix
	if typ, ok := c.typeOf(last - 5); ok {
		t.Fatalf("typeOf(%d) = %v after its entry was deleted", last-5, typ)
	}
	if err := c.GetLog(last, &l); err == nil {
		t.Fatalf("entry %d read back after it was deleted", last)
	}
	if c.bytes != (entryCacheSize-6)*100 {
		t.Fatalf("the cache counts %d bytes, want %d: the entries left", c.bytes, (entryCacheSize-6)*100)
	}
}
