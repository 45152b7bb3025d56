package index

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// damageOneBlock writes n events into a fresh index in dir, flushes it and flips one
// byte a tenth into its largest table: in a block of ids or versions, which Open does
// not read, so only a full read finds it.
func damageOneBlock(t *testing.T, dir string, n int) {
	t.Helper()
	writeClosed(t, dir, n)
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	var biggest string
	var size int64
	for _, p := range tables {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if biggest == "" {
		t.Fatal("no tables after a flush")
	}
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/10] ^= 0x55
	if err := os.WriteFile(biggest, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFindsDamageOpenDoesNotRead: a flipped byte in a block that Open and the
// store's first reads do not touch is found by Check, reported to OnDamage, and makes
// Check fail with ErrDamaged.
func TestCheckFindsDamageOpenDoesNotRead(t *testing.T) {
	dir := t.TempDir()
	damageOneBlock(t, dir, 20000)
	var reported []error
	x, err := Open(dir, Options{CacheSize: 1 << 20, OnDamage: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatalf("Open read the damaged block (the test must damage another): %v", err)
	}
	defer x.Close()
	paced := 0
	err = x.Check(context.Background(), func(int64) { paced++ })
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("Check of an index with a damaged block: %v, want ErrDamaged", err)
	}
	if len(reported) == 0 || !errors.Is(reported[0], ErrDamaged) {
		t.Fatalf("OnDamage got %v", reported)
	}
}

// TestCheckIsPacedAndStops: Check calls its pace as it reads, and a cancelled context
// stops it with the context's error.
func TestCheckIsPacedAndStops(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 40000) // several MiB of entries
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	var calls []int64
	if err := x.Check(context.Background(), func(read int64) { calls = append(calls, read) }); err != nil {
		t.Fatalf("Check of a sound index: %v", err)
	}
	if len(calls) < 2 {
		t.Fatalf("pace called %d times over the index, want a call every %d bytes", len(calls), checkStep)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i]-calls[i-1] < checkStep {
			t.Fatalf("pace called at %d then %d bytes, closer than %d", calls[i-1], calls[i], checkStep)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	err := x.Check(ctx, func(int64) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check cancelled from its pace: %v, want context.Canceled", err)
	}
}

// TestCheckRoundsReadEverythingOnce: a check that starts a fresh iterator every few
// entries reads exactly what one iterator reads: no entry skipped at a round's end, none
// read twice.
func TestCheckRoundsReadEverythingOnce(t *testing.T) {
	x := openTest(t, t.TempDir())
	applyEvents(t, x, 1, 5000)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	applyEvents(t, x, 5001, 500) // and some in the memtable
	whole, err := x.check(context.Background(), nil, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range []int64{64, 4 << 10} {
		got, err := x.check(context.Background(), nil, round)
		if err != nil {
			t.Fatal(err)
		}
		if got != whole {
			t.Errorf("rounds of %d bytes read %d bytes, one iterator %d", round, got, whole)
		}
	}
}
