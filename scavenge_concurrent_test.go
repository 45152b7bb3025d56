package pmd_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestScavengeConcurrent: two scavenges started together (two POST /v1/admin/scavenge,
// or one and the scheduled one) both finish, one after the other: between them they
// remove the deleted stream's events once, and every other stream reads as it was.
func TestScavengeConcurrent(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{Logger: quietLogger(), NoSync: true, SegmentSize: 4096, NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		mustAppend(t, s, "Gone-1", pmd.Any, ev("T", "i", i))
		mustAppend(t, s, "Kept-1", pmd.Any, ev("T", "i", i))
	}
	for i := range 200 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
	}
	ctx := context.Background()
	if err := s.DeleteStream(ctx, "Gone-1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]pmd.ScavengeResult, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
		})
	}
	wg.Wait()
	gone := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("scavenge %d: %v", i, err)
		}
		gone += results[i].Gone
	}
	// One of them removed the deleted stream's 20 events (its deletion names its
	// version); the other found nothing left to remove.
	if gone != 20 || min(results[0].Gone, results[1].Gone) != 0 {
		t.Errorf("gone %d and %d, want 20 by one scavenge and 0 by the other", results[0].Gone, results[1].Gone)
	}
	if info := streamInfo(t, s, "Gone-1"); info.Exists {
		t.Errorf("Gone-1: %+v, want deleted", info)
	}
	for stream, n := range map[string]int{"Kept-1": 20, "Filler": 200} {
		events, err := readStream(t, s, stream, pmd.ReadOptions{})
		if err != nil || len(events) != n {
			t.Errorf("%s: %d events (%v), want %d", stream, len(events), err, n)
		}
	}
}

// TestScavengeWaitsForTheOneUnderWay: a scavenge started while another runs waits for
// it, honouring its own context: it does nothing until the first is done, and gives up
// with the context's error when that ends first.
func TestScavengeWaitsForTheOneUnderWay(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{Logger: quietLogger(), NoSync: true, SegmentSize: 4096, NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		mustAppend(t, s, "Gone-1", pmd.Any, ev("T", "i", i))
	}
	for i := range 200 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
	}
	ctx := context.Background()
	if err := s.DeleteStream(ctx, "Gone-1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	var second error
	secondProgressed, started := false, false
	progress := func(done, total int64) {
		if started {
			return
		}
		started = true
		// The first scavenge is under way: a second one, with a deadline, must wait
		// for it and give up when the deadline passes, having done nothing.
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, second = s.Scavenge(wctx, pmd.ScavengeOptions{BytesPerSecond: -1,
			Progress: func(int64, int64) { secondProgressed = true }})
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Fatal("the first scavenge reported no progress: the test shows nothing")
	}
	if secondProgressed || !errors.Is(second, context.DeadlineExceeded) {
		t.Errorf("second scavenge during the first: progressed %t, error %v; want it to wait and fail with the deadline", secondProgressed, second)
	}
	if res.Gone != 20 {
		t.Errorf("first scavenge: %d gone, want 20", res.Gone)
	}
	// Once the first is done, another runs.
	if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
		t.Errorf("scavenge after the first: %v", err)
	}
}

// TestScavengeWaitsBeforeItRecordsExpiry: a scavenge started while another runs records
// no expiry until the first is done: the expiry is part of the work one scavenge at a
// time does. Here the second one, started from the first's progress, with a deadline,
// must fail with the deadline having written nothing; its context is also cancelled at
// once if it writes a record meanwhile, so that a second one that expires before it
// waits fails fast and shows it.
func TestScavengeWaitsBeforeItRecordsExpiry(t *testing.T) {
	var commits atomic.Pointer[func()]
	s, err := pmd.Open(t.TempDir(), pmd.Options{Logger: quietLogger(), NoSync: true, SegmentSize: 4096, NoScrub: true,
		OnCommit: func(pmd.CommitInfo) {
			if f := commits.Load(); f != nil {
				(*f)()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.SetRetention(ctx, "Short-1", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "Short-1", pmd.Any, ev("T"))
	for i := range 200 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
	}
	var second pmd.ScavengeResult
	var secondErr error
	var wrote atomic.Bool
	started := false
	progress := func(done, total int64) {
		if started {
			return
		}
		started = true
		// Another event of Short-1, past its max age at once: the second scavenge
		// would record its expiry.
		mustAppend(t, s, "Short-1", pmd.Any, ev("T"))
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		onCommit := func() { wrote.Store(true); cancel() }
		commits.Store(&onCommit)
		defer commits.Store(nil)
		second, secondErr = s.Scavenge(wctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	}
	first, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if !started || first.Expired != 1 {
		t.Fatalf("first scavenge: %+v; want Short-1 expired and progress reported", first)
	}
	if wrote.Load() || second.Expired != 0 || !errors.Is(secondErr, context.DeadlineExceeded) {
		t.Errorf("second scavenge during the first: wrote a record %t, %+v, %v; want it to wait, writing nothing, and fail with the deadline", wrote.Load(), second, secondErr)
	}
	// The expiry the second one did not record is the next scavenge's.
	if res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || res.Expired != 1 {
		t.Errorf("scavenge after the first: %+v, %v; want Short-1 expired", res, err)
	}
}
