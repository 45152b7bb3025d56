package index

import (
	"sync/atomic"
	"testing"
)

// TestBeforeFlushRunsFirst: the owner's hook runs before the entries applied in memory go
// to disk, seeing them applied, so that it can sync the log they come from first.
func TestBeforeFlushRunsFirst(t *testing.T) {
	var x *Index
	var calls, seen atomic.Uint64
	x, err := Open(t.TempDir(), Options{BeforeFlush: func() {
		calls.Add(1)
		seen.Store(x.Position())
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	applyEvents(t, x, 1, 10)
	if calls.Load() != 0 {
		t.Fatalf("the hook ran %d times before any flush", calls.Load())
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 || seen.Load() != 10 {
		t.Fatalf("the hook ran %d times and saw position %d, want once at 10", calls.Load(), seen.Load())
	}
}
