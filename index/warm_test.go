package index

import (
	"context"
	"errors"
	"testing"
)

// readAll reads every version of the test stream and looks up a spread of ids: what the
// first reads after an open would touch.
func readAll(t *testing.T, x *Index, n int) {
	t.Helper()
	if got := versions(x, "S$1", 0, false, 0); len(got) != n {
		t.Fatalf("S$1 has %d versions, want %d", len(got), n)
	}
	for pos := uint64(1); pos <= uint64(n); pos += 97 {
		if got, ok, err := x.Lookup(testID(pos)); err != nil || !ok || got != pos {
			t.Fatalf("Lookup(id of %d) = %d, %v, %v", pos, got, ok, err)
		}
	}
}

// TestWarmLoadsTheIndex: after Warm, reads of an index that fits in its cache miss it no
// more; without Warm, the same reads after an open do.
func TestWarmLoadsTheIndex(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	writeClosed(t, dir, n)
	for _, warm := range []bool{false, true} {
		x, err := Open(dir, Options{CacheSize: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if warm {
			if err := x.Warm(context.Background()); err != nil {
				t.Fatalf("Warm: %v", err)
			}
		}
		before := x.Metrics().CacheMisses
		readAll(t, x, n)
		missed := x.Metrics().CacheMisses - before
		x.Close()
		switch {
		case warm && missed != 0:
			t.Errorf("after Warm, the reads missed the cache %d times", missed)
		case !warm && missed == 0:
			t.Fatal("the reads never missed the cache of a fresh open: the test shows nothing")
		}
	}
}

// TestWarmStops: Warm returns the context's error once it is done.
func TestWarmStops(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 20000)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.Warm(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Warm with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestWarmOutlastsCompactions: an index closed with level 0 full compacts after it opens,
// and a compaction's new tables start out of the cache (its old ones leave it): Warm
// returns once the compactions are done and the tables they wrote are read, so that the
// cache holds the index and reads miss it no more.
func TestWarmOutlastsCompactions(t *testing.T) {
	const n = 30_000
	dir := t.TempDir()
	// Small memtables, each flush with the position key: level 0 fills with tables
	// that overlap, and the index is closed before they are all compacted.
	x, err := Open(dir, Options{CacheSize: 64 << 20, MemTableSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for from := 1; from <= n; from += 500 {
		applyEvents(t, x, uint64(from), 500)
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x, err = Open(dir, Options{CacheSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Metrics().L0Files == 0 {
		t.Skip("level 0 was compacted before the close: the test shows nothing")
	}
	if err := x.Warm(context.Background()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	// Whatever compaction Warm left running or waiting would empty the cache again.
	for {
		ended, busy := x.gate.activity()
		if !busy {
			break
		}
		<-ended
	}
	m := x.Metrics()
	if m.CacheBytes == 0 {
		t.Fatalf("after Warm the cache holds nothing: %+v", m)
	}
	readAll(t, x, n)
	if missed := x.Metrics().CacheMisses - m.CacheMisses; missed != 0 {
		t.Fatalf("after Warm, the reads missed the cache %d times: %+v", missed, x.Metrics())
	}
}
