package index

import (
	"context"
	"errors"
	"testing"
	"time"
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

// writeL0Full writes n events into a fresh index in dir with compactions held back and
// small memtables, 500 events a flush: it is closed with level 0 full of tables that
// overlap, so that its next open has a compaction of level 0 due.
func writeL0Full(t *testing.T, dir string, n int) {
	t.Helper()
	x, err := Open(dir, Options{CacheSize: 64 << 20, MemTableSize: 64 << 10, holdCompactions: true})
	if err != nil {
		t.Fatal(err)
	}
	for from := 1; from <= n; from += 500 {
		applyEvents(t, x, uint64(from), 500)
		if err := x.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitCompactions waits until no compaction runs or waits, failing the test after a
// deadline.
func waitCompactions(t *testing.T, x *Index) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		ended, busy := x.gate.activity()
		if !busy {
			return
		}
		select {
		case <-ended:
		case <-deadline.C:
			t.Fatal("compactions still running or waiting after a minute")
		}
	}
}

// TestWarmOutlastsCompactions: an index closed with level 0 full compacts after it opens,
// and a compaction's new tables start out of the cache (its old ones leave it): Warm
// returns once that compaction is done and the tables it wrote are read, so that the
// cache holds the index and reads miss it no more. The compactions are held back until
// Warm's first read is done, so that they always replace the tables it read.
func TestWarmOutlastsCompactions(t *testing.T) {
	const n = 30_000
	dir := t.TempDir()
	writeL0Full(t, dir, n)
	x, err := Open(dir, Options{CacheSize: 64 << 20, holdCompactions: true})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if m := x.db.Metrics(); m.Levels[0].TablesCount == 0 || m.Levels[0].Score < 1 {
		t.Fatalf("level 0 has %d tables, score %.2f: no compaction is due, the test shows nothing", m.Levels[0].TablesCount, m.Levels[0].Score)
	}
	reads := 0
	x.warmHook = func(round int) {
		if reads++; round == 1 {
			x.gate.start()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := x.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if reads != 2 {
		t.Errorf("Warm read the index %d times, want 2 (before and after the compaction of the open)", reads)
	}
	// Whatever compaction Warm left running or waiting would empty the cache again.
	waitCompactions(t, x)
	m := x.Metrics()
	if m.CacheBytes == 0 {
		t.Fatalf("after Warm the cache holds nothing: %+v", m)
	}
	readAll(t, x, n)
	if missed := x.Metrics().CacheMisses - m.CacheMisses; missed != 0 {
		t.Fatalf("after Warm, the reads missed the cache %d times: %+v", missed, x.Metrics())
	}
}

// reopenWritten writes n events into a fresh index and closes it, then opens it again
// with a cache that holds it all, as a restart does. The test's cleanup closes it.
func reopenWritten(t *testing.T, n int) *Index {
	t.Helper()
	dir := t.TempDir()
	writeClosed(t, dir, n)
	x, err := Open(dir, Options{CacheSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// warmReads runs Warm on x, failing the test if it does not return within 10 s, and
// returns how many times it read the index.
func warmReads(t *testing.T, x *Index) int {
	t.Helper()
	reads := 0
	x.warmHook = func(int) { reads++ }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Warm(ctx); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	return reads
}

// TestWarmReadsOnceWhenNothingWasDue: an index whose open had no compaction due is read
// once, even when writes make compactions run or wait meanwhile (under a steady load they
// nearly always do): Warm neither waits for them nor reads again.
func TestWarmReadsOnceWhenNothingWasDue(t *testing.T) {
	x := reopenWritten(t, 5000)
	if m := x.db.Metrics(); m.Levels[0].Score >= 1 {
		t.Fatalf("level 0 has score %.2f at the open: the test shows nothing", m.Levels[0].Score)
	}
	// Writes after the open that leave a compaction waiting, held back: Warm must not
	// wait for it.
	x.gate.hold()
	for from := 5001; from <= 8000; from += 500 {
		applyEvents(t, x, uint64(from), 500)
		if err := x.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, busy := x.gate.activity(); !busy {
		t.Fatal("no compaction waits after the writes: the test shows nothing")
	}
	if reads := warmReads(t, x); reads != 1 {
		t.Errorf("Warm read the index %d times, want 1", reads)
	}
}

// TestGateIdleIsNotBusy: on an index where no compaction waits, the granter's rounds
// never make the gate report one as running (Warm and tests wait on a busy gate for a
// compaction to end, which an idle index never does).
func TestGateIdleIsNotBusy(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 100)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	waitCompactions(t, x)
	const rounds = 20000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range rounds {
			x.gate.grant()
		}
	}()
	busy := 0
	for range rounds {
		if _, b := x.gate.activity(); b {
			busy++
		}
	}
	<-done
	if busy != 0 {
		t.Fatalf("an idle gate reported a compaction running %d times in %d looks", busy, rounds)
	}
}

// TestWarmEndsWhenTheOpensTablesAreLeftBehind: pebble compacts level 0 only while it is
// due, and can leave some of the open's tables behind in a level 0 no longer due; Warm
// then reads the index a second time once no compaction runs or waits, rather than wait
// for later writes to compact them (or for Close).
func TestWarmEndsWhenTheOpensTablesAreLeftBehind(t *testing.T) {
	x := reopenWritten(t, 5000)
	// A table of the open that no compaction takes: level 0 is not due.
	x.openL0 = newLevelZeroAtOpen()
	x.openL0.follow([]uint64{1 << 40})
	if reads := warmReads(t, x); reads != 2 {
		t.Errorf("Warm read the index %d times, want 2", reads)
	}
}
