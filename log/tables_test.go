package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// sealedLog writes a log of many small sealed segments and returns its directory, the
// options it was written with, its records and its segments.
func sealedLog(t *testing.T) (string, Options, []Record, []SegmentInfo) {
	t.Helper()
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 400}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3, 5, 4, 6, 2, 5, 3, 4, 4, 7, 2, 3, 5)
	segs := l.Segments()
	mustClose(t, l)
	if len(segs) < 6 {
		t.Fatalf("%d segments", len(segs))
	}
	return dir, opts, want, segs
}

// TestOpenReadsNoSidecar damages every sealed segment's sidecar: Open neither notices
// nor loads any table, Segments still counts every record, and the first read of each
// segment rebuilds its sidecar and serves the right records.
func TestOpenReadsNoSidecar(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	good := snapshot(t, dir)
	for _, s := range segs[:len(segs)-1] {
		flipBit(t, sidecarPath(s.Path), 30)
	}
	var logs logBuffer
	opts.Logger = logs.logger()
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if strings.Contains(logs.String(), "rebuilt") {
		t.Fatalf("Open rebuilt a sidecar: %s", logs.String())
	}
	if !reflect.DeepEqual(l.Segments(), segs) {
		t.Fatalf("Segments = %+v, want %+v", l.Segments(), segs)
	}
	if tables, loads := l.tables.loaded(); tables != 0 || loads != 0 {
		t.Fatalf("after Open: %d tables in memory, %d loads", tables, loads)
	}
	for i, s := range segs[:len(segs)-1] {
		pos := s.First + uint64(s.Count) - 1 // the last record: its end is the segment's
		if r, err := l.Read(pos); err != nil || !reflect.DeepEqual(r, want[pos-1]) {
			t.Fatalf("Read(%d) = %+v, %v", pos, r, err)
		}
		contains(t, "log", logs.String(), "log: rebuilt offsets of segment "+s.Path+": offsets checksum mismatch")
		if tables, loads := l.tables.loaded(); tables != i+1 || loads != i+1 {
			t.Fatalf("after reading %d segments: %d tables in memory, %d loads", i+1, tables, loads)
		}
	}
	checkContent(t, l, want)
	if _, loads := l.tables.loaded(); loads != len(segs)-1 {
		t.Fatalf("%d loads for %d sealed segments", loads, len(segs)-1)
	}
	if got := snapshot(t, dir); !reflect.DeepEqual(got, good) {
		t.Fatal("the rebuilt sidecars differ from the ones written with the segments")
	}
}

// TestOpenReadOnlyLazy: in ReadOnly mode a load that finds a damaged sidecar rebuilds
// the table in memory only, and Scrub loads every table.
func TestOpenReadOnlyLazy(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	for _, s := range segs[:len(segs)-1] {
		flipBit(t, sidecarPath(s.Path), 30)
	}
	before := snapshot(t, dir)
	opts.ReadOnly = true
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if found, err := l.Scrub(context.Background(), nil); err != nil || len(found) != 0 {
		t.Fatalf("Scrub = %v, %v", found, err)
	}
	if _, loads := l.tables.loaded(); loads != len(segs)-1 {
		t.Fatalf("Scrub made %d loads for %d sealed segments", loads, len(segs)-1)
	}
	checkContent(t, l, want)
	if got := snapshot(t, dir); !reflect.DeepEqual(got, before) {
		t.Fatal("a read-only Log changed the files")
	}
}

// TestTableConcurrentLoad reads one unloaded segment from many goroutines at once: its
// table is loaded, and its damaged sidecar rebuilt, once.
func TestTableConcurrentLoad(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	s := segs[2]
	flipBit(t, sidecarPath(s.Path), 30)
	var logs logBuffer
	opts.Logger = logs.logger()
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)

	start := make(chan struct{})
	errs := make(chan error, 16*s.Count)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < s.Count; i++ {
				pos := s.First + uint64((g+i)%s.Count)
				r, err := l.Read(pos)
				if err == nil && !reflect.DeepEqual(r, want[pos-1]) {
					err = fmt.Errorf("Read(%d) = %+v", pos, r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, loads := l.tables.loaded(); loads != 1 {
		t.Fatalf("%d loads of one segment", loads)
	}
	if n := strings.Count(logs.String(), "rebuilt offsets"); n != 1 {
		t.Fatalf("rebuilt %d times: %s", n, logs.String())
	}
}

// TestTableEviction keeps two tables: reads all over the log drop and reload tables
// and are served right, and sealing segments keeps the bound too.
func TestTableEviction(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	opts.MaxLoadedSegments = 2
	l := mustOpen(t, dir, opts)
	sealed := len(segs) - 1
	check := func(pos uint64) {
		t.Helper()
		if r, err := l.Read(pos); err != nil || !reflect.DeepEqual(r, want[pos-1]) {
			t.Fatalf("Read(%d) = %+v, %v", pos, r, err)
		}
		if tables, _ := l.tables.loaded(); tables > 2 {
			t.Fatalf("%d tables in memory, at most 2 wanted", tables)
		}
	}
	// Two rounds over every sealed segment: each read of the second one reloads.
	for round := 1; round <= 2; round++ {
		for _, s := range segs[:sealed] {
			check(s.First)
			check(s.First + uint64(s.Count) - 1)
		}
		if _, loads := l.tables.loaded(); loads != round*sealed {
			t.Fatalf("round %d: %d loads, want %d", round, loads, round*sealed)
		}
	}
	// The two most recently used stay: reading them again loads nothing.
	check(segs[sealed-2].First)
	check(segs[sealed-1].First)
	if _, loads := l.tables.loaded(); loads != 2*sealed {
		t.Fatalf("%d loads, want %d", loads, 2*sealed)
	}
	// Scan from the middle of a dropped segment loads its table, and only that.
	n := 0
	from := segs[0].First + 1
	if err := l.Scan(context.Background(), from, func(r Record) error {
		if !reflect.DeepEqual(r, want[from-1+uint64(n)]) {
			return fmt.Errorf("scan: %+v", r)
		}
		n++
		return nil
	}); err != nil || n != len(want)-int(from)+1 {
		t.Fatalf("Scan: %d records, %v", n, err)
	}
	if _, loads := l.tables.loaded(); loads != 2*sealed+1 {
		t.Fatalf("%d loads, want %d", loads, 2*sealed+1)
	}

	// Writes that seal segments keep their tables, within the bound.
	want = writeBatches(t, l, want, 6, 6, 6, 6)
	if tables, _ := l.tables.loaded(); tables != 2 {
		t.Fatalf("%d tables in memory after sealing, want 2", tables)
	}
	checkContent(t, l, want)
	checkFiles(t, l)
	mustClose(t, l)

	// MaxLoadedSegments must not be negative.
	opts.MaxLoadedSegments = -1
	if _, err := Open(dir, opts); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with MaxLoadedSegments -1: %v", err)
	}
}

// TestTableMissingSegment removes a sealed segment: Open cannot tell without the
// sidecars, the segment before it then holds fewer records than the names imply, and
// reads of the records it lacks fail with a *CorruptError naming it and them, while its
// own records and the other segments' are served.
func TestTableMissingSegment(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	for _, name := range []string{segs[3].Path, sidecarPath(segs[3].Path)} {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if got := l.Segments()[2]; got.Count != segs[2].Count+segs[3].Count {
		t.Fatalf("segment %s counts %d records, want the %d the names imply", got.Path, got.Count, segs[2].Count+segs[3].Count)
	}
	for _, pos := range []uint64{segs[3].First, segs[4].First - 1} {
		_, err := l.Read(pos)
		ce := asCorrupt(t, err)
		if ce.Segment != segs[2].Path || ce.Position != segs[3].First || ce.End != segs[4].First {
			t.Fatalf("Read(%d): %+v", pos, ce)
		}
		contains(t, "reason", ce.Reason, fmt.Sprintf("sealed segment holds %d records, but the next segment starts at position %d", segs[2].Count, segs[4].First))
	}
	for _, pos := range []uint64{1, segs[1].First, segs[2].First, segs[3].First - 1, segs[4].First, uint64(len(want))} {
		if r, err := l.Read(pos); err != nil || !reflect.DeepEqual(r, want[pos-1]) {
			t.Fatalf("Read(%d) = %+v, %v", pos, r, err)
		}
	}
}

// TestOpenMovesLegacySidecars opens a log written before sidecarDir, its sidecars beside
// its segments: a read-only open reads them where they are and changes nothing; the next
// open moves them into sidecarDir, rebuilds none, and leaves only segments beside them.
func TestOpenMovesLegacySidecars(t *testing.T) {
	dir, opts, want, segs := sealedLog(t)
	for _, s := range segs[:len(segs)-1] {
		if err := os.Rename(sidecarPath(s.Path), legacySidecar(s.Path)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, sidecarDir)); err != nil {
		t.Fatal(err)
	}
	legacy := snapshot(t, dir)

	var logs logBuffer
	ro := opts
	ro.ReadOnly, ro.Logger = true, logs.logger()
	l := mustOpen(t, dir, ro)
	checkContent(t, l, want)
	mustClose(t, l)
	if !reflect.DeepEqual(snapshot(t, dir), legacy) {
		t.Fatal("a read-only open changed the directory")
	}
	// Where they are, the sidecars are found and match (an offline check reads them).
	if problems, err := VerifySidecars(dir); err != nil || len(problems) != 0 {
		t.Fatalf("VerifySidecars of the old layout: %v, %v", problems, err)
	}

	o := opts
	o.Logger = logs.logger()
	l = mustOpen(t, dir, o)
	defer mustClose(t, l)
	contains(t, "log", logs.String(), fmt.Sprintf("log: moved %d offsets files into %s", len(segs)-1, filepath.Join(dir, sidecarDir)))
	checkContent(t, l, want)
	checkFiles(t, l)
	if strings.Contains(logs.String(), "rebuilt") {
		t.Fatalf("rebuilt a sidecar it moved: %s", logs.String())
	}
}
