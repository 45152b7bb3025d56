package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// reopenRepaired opens the damaged log in dir and checks what a user relies on: every
// committed record is there and identical, nothing else is, the files are consistent,
// and the log takes writes at the next position, also after another reopen.
func reopenRepaired(t *testing.T, dir string, opts Options, want []Record) []Repair {
	t.Helper()
	l := mustOpen(t, dir, opts)
	checkContent(t, l, want)
	checkFiles(t, l)
	repairs := l.Repairs()
	more := writeBatches(t, l, want, 2)
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if r := l.Repairs(); len(r) != 0 {
		t.Fatalf("second reopen repaired again: %v", r)
	}
	checkContent(t, l, more)
	return repairs
}

// lastSegment returns the path and size of the last segment file of the closed log in dir.
func lastSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	segs, _, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("listSegments: %v, %v", segs, err)
	}
	s := segs[len(segs)-1]
	return s.path, s.size
}

// encodedEntry is the segment entry of r as tidwall/wal writes it.
func encodedEntry(r Record) []byte {
	rec := AppendRecord(nil, &r)
	return append(binary.AppendUvarint(nil, uint64(len(rec))), rec...)
}

func TestRepairTornTail(t *testing.T) {
	dir := t.TempDir()
	opts := Options{} // durable: the repair fsyncs
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3, 4)
	mustClose(t, l)
	path, size := lastSegment(t, dir)
	next := genBatch(7, 1)[0]
	next.Position, next.WriteStart = 8, 8
	e := encodedEntry(next)
	appendFile(t, path, e[:len(e)/2])

	// tidwall/wal alone refuses this directory.
	repairs := reopenRepaired(t, dir, opts, want)
	wantRepair := []Repair{{Segment: path, Offset: size, Bytes: int64(len(e) / 2), Records: 0}}
	if len(repairs) != 1 || !strings.HasPrefix(repairs[0].Reason, "torn entry: length") {
		t.Fatalf("Repairs = %+v", repairs)
	}
	repairs[0].Reason = ""
	if !reflect.DeepEqual(repairs, wantRepair) {
		t.Fatalf("Repairs = %+v, want %+v", repairs, wantRepair)
	}
}

// TestRepairLostBytes cuts the last segment at every offset inside the last batch, as a
// power cut losing unsynced bytes does, and also zero-fills from there, as a file
// system that extended the file without writing its data does.
func TestRepairLostBytes(t *testing.T) {
	src := t.TempDir()
	l := mustOpen(t, src, Options{NoSync: true})
	want := writeBatches(t, l, nil, 2, 1, 3)
	base := l.Segments()[0].Size
	want = writeBatches(t, l, want, 3) // the batch a crash interrupts
	end := l.Segments()[0].Size
	mustClose(t, l)
	path, _ := lastSegment(t, src)
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	committed := want[:6]
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	dir := t.TempDir()
	for off := base; off < end; off += step {
		for _, zeros := range []bool{false, true} {
			os.RemoveAll(dir)
			os.Mkdir(dir, 0o750)
			b := append([]byte(nil), pristine[:off]...)
			if zeros {
				b = append(b, make([]byte, end-off+4096)...)
			}
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), b, 0o640); err != nil {
				t.Fatal(err)
			}
			// Lighter than reopenRepaired, which other tests use: the loop is long, and
			// closing a tidwall/wal log always fsyncs.
			l := mustOpen(t, dir, Options{NoSync: true})
			checkContent(t, l, committed)
			checkFiles(t, l)
			repairs := l.Repairs()
			more := writeBatches(t, l, committed, 1)
			checkContent(t, l, more)
			mustClose(t, l)
			if off == base && !zeros {
				if len(repairs) != 0 {
					t.Fatalf("offset %d: Repairs = %+v, want none", off, repairs)
				}
				continue
			}
			if len(repairs) != 1 || repairs[0].Offset != base || repairs[0].Bytes != int64(len(b))-base {
				t.Fatalf("offset %d zeros %v: Repairs = %+v, want a cut of %d bytes at %d", off, zeros, repairs, int64(len(b))-base, base)
			}
			if zeros && off == base {
				contains(t, "reason", repairs[0].Reason, "zero-filled tail at offset")
			}
			// Whole records of the batch that survived are counted.
			if whole := countWhole(pristine[base:off]); repairs[0].Records != whole {
				t.Fatalf("offset %d zeros %v: Repairs[0].Records = %d, want %d", off, zeros, repairs[0].Records, whole)
			}
		}
	}
}

// countWhole counts the whole entries at the start of b.
func countWhole(b []byte) int {
	n := 0
	for {
		_, size, ok := entry(b)
		if !ok {
			return n
		}
		b, n = b[size:], n+1
	}
}

func TestRepairZeroFilledTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 600})
	want := writeBatches(t, l, nil, 3, 4, 5, 2)
	mustClose(t, l)
	path, size := lastSegment(t, dir)
	appendFile(t, path, make([]byte, 4096))
	var logs logBuffer
	repairs := reopenRepaired(t, dir, Options{NoSync: true, SegmentSize: 600, Logger: logs.logger()}, want)
	if len(repairs) != 1 || repairs[0].Segment != path || repairs[0].Offset != size || repairs[0].Bytes != 4096 || repairs[0].Records != 0 {
		t.Fatalf("Repairs = %+v", repairs)
	}
	contains(t, "reason", repairs[0].Reason, fmt.Sprintf("zero-filled tail at offset %d", size))
	contains(t, "log", logs.String(), fmt.Sprintf("log: cut 4096 bytes after position %d in segment %s: zero-filled tail", len(want), path))
}

// TestRepairBatchAcrossSegments interrupts a batch that spans several segments at each
// of its records, as a crash does when the records after it never reach the disk.
func TestRepairBatchAcrossSegments(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 300}
	l := mustOpen(t, src, opts)
	want := writeBatches(t, l, nil, 2, 3)
	first := l.LastPosition() + 1
	segsBefore := len(l.Segments())
	want = writeBatches(t, l, want, 12)
	if n := len(l.Segments()) - segsBefore; n < 3 {
		t.Fatalf("the batch started %d segments, want 3 or more", n)
	}
	mustClose(t, l)
	committed := want[:first-1]

	for pos := first; pos <= uint64(len(want)); pos++ {
		for _, torn := range []bool{false, true} {
			t.Run(fmt.Sprintf("cut at %d torn %v", pos, torn), func(t *testing.T) {
				dir := copyDir(t, src)
				path, off, size := entryAt(t, dir, pos)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if torn {
					off += int64(size) / 2
				}
				if err := os.WriteFile(path, b[:off], 0o640); err != nil {
					t.Fatal(err)
				}
				// The segments after the cut were never created: tidwall/wal syncs a
				// segment whole before it creates the next, so a crash tears only the
				// last segment file. A cut at the start of a segment leaves that file
				// empty, as tidwall/wal creates it before writing to it.
				segs, _, _ := listSegments(dir)
				for _, s := range segs {
					if s.path > path {
						os.Remove(s.path)
					}
				}
				before := snapshot(t, dir)
				repairs := reopenRepaired(t, dir, opts, committed)
				var cut int64
				for _, r := range repairs {
					cut += r.Bytes
				}
				var total int64
				for name, content := range before {
					if !strings.HasSuffix(name, sidecarExt) {
						total += int64(len(content))
					}
				}
				if want := total - int64(segBytes(committed)); cut != want {
					t.Fatalf("Repairs cut %d bytes, want %d: %+v", cut, want, repairs)
				}
			})
		}
	}
}

// TestRepairDamageInSealedPartOfWrite damages the part of an unfinished batch that lies
// in a segment before the last: tidwall/wal fsynced that segment before starting the
// next, so a crash cannot have damaged it, but the batch was never acknowledged and is
// cut whole with its damaged record, as any torn batch is.
func TestRepairDamageInSealedPartOfWrite(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 300}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 2, 3)
	first := l.LastPosition() + 1
	writeBatches(t, l, nil, 12)
	last := l.LastPosition()
	mustClose(t, l)
	path, off, _ := entryAt(t, dir, last)
	truncateFile(t, path, off) // the batch lost its commit
	segs, _, _ := listSegments(dir)
	for _, s := range segs {
		if s.path > path {
			os.Remove(s.path) // the batch ended at a rollover: the next segment was not created yet
		}
	}
	dpath, doff, dsize := entryAt(t, dir, first)
	if dpath == path {
		t.Fatal("the batch starts in the last segment")
	}
	b, _ := os.ReadFile(dpath)
	clear(b[doff+1 : doff+int64(dsize)])
	os.WriteFile(dpath, b, 0o640)
	reopenRepaired(t, dir, opts, want)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if d := l.Damage(); len(d) != 0 {
		t.Fatalf("Damage = %v: the damaged record was cut with its batch", d)
	}
}

// segBytes is the size of the segment files holding exactly recs.
func segBytes(recs []Record) int {
	n := 0
	for _, r := range recs {
		n += len(encodedEntry(r))
	}
	return n
}

// TestCorruptSealedRecord flips a bit in a record of an old segment: reads of it report
// where, every other record is still served.
func TestCorruptSealedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 500}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 4, 4, 4, 4, 4, 4)
	mustClose(t, l)
	for _, tc := range []struct {
		name  string
		pos   uint64
		delta int64 // from the entry start
	}{
		{"body", 6, 40},
		{"header", 9, 12},
		{"length prefix", 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t, dir)
			path, off, _ := entryAt(t, d, tc.pos)
			if path == lastSegmentPath(t, d) {
				t.Fatalf("position %d is in the tail segment", tc.pos)
			}
			flipBit(t, path, off+tc.delta)
			l := mustOpen(t, d, opts)
			defer mustClose(t, l)
			_, err := l.Read(tc.pos)
			ce := asCorrupt(t, err)
			if ce.Segment != path || ce.Offset != off || ce.Position != tc.pos {
				t.Fatalf("CorruptError %+v, want segment %s offset %d position %d", ce, path, off, tc.pos)
			}
			for i := range want {
				if p := uint64(i + 1); p != tc.pos {
					if r, err := l.Read(p); err != nil || !reflect.DeepEqual(r, want[i]) {
						t.Fatalf("Read(%d): %v", p, err)
					}
				}
			}
			n := 0
			err = l.Scan(context.Background(), 1, func(Record) error { n++; return nil })
			if ce := asCorrupt(t, err); ce.Position != tc.pos || n != int(tc.pos-1) {
				t.Fatalf("Scan stopped after %d records with %+v", n, ce)
			}
		})
	}
}

func lastSegmentPath(t *testing.T, dir string) string {
	p, _ := lastSegment(t, dir)
	return p
}

// TestOpenRefusesDamageBeforeLaterWrite damages a committed record that a later Write
// follows: no crash explains that. If the framing still holds (a flipped body bit),
// Open keeps the record, reports it by Damage and serves the records around it;
// otherwise Open fails, saying where, and changes nothing. The later Write is in the
// same segment, or in the next one whose commit was lost, so that repair reads back into
// the damaged segment.
func TestOpenRefusesDamageBeforeLaterWrite(t *testing.T) {
	// writes lays out batches 1-3 and 4-5, then one Write of 6-11, then 12-13.
	writes := func(t *testing.T, dir string, segSize int) {
		l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: segSize})
		writeBatches(t, l, nil, 3, 2, 6, 2)
		mustClose(t, l)
	}
	probe := t.TempDir()
	writes(t, probe, 1<<20)
	_, boundary, _ := entryAt(t, probe, 8)

	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, off int64, size int)
		reason string
		keeps  bool // Open keeps the damaged record
	}{
		{"flipped body bit", func(t *testing.T, path string, off int64, size int) { flipBit(t, path, off+int64(size)-2) }, "checksum mismatch", true},
		{"flipped length bit", func(t *testing.T, path string, off int64, size int) { flipBit(t, path, off) }, "", false},
		{"zeroed record", func(t *testing.T, path string, off int64, size int) {
			b, _ := os.ReadFile(path)
			clear(b[off : off+int64(size)])
			os.WriteFile(path, b, 0o640)
		}, "followed by", false},
	} {
		for _, next := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s next segment %v", tc.name, next), func(t *testing.T) {
				dir := t.TempDir()
				segSize := 1 << 20
				if next {
					segSize = int(boundary) // 8-11 go to the second segment
				}
				writes(t, dir, segSize)
				if next {
					p, off, _ := entryAt(t, dir, 11)
					if p == filepath.Join(dir, segmentName(1)) {
						t.Fatal("position 11 is in the first segment")
					}
					truncateFile(t, p, off) // the Write of 6-11 lost its commit
					for _, s := range []uint64{12, 13} {
						os.Remove(filepath.Join(dir, segmentName(s)))
					}
				}
				// Position 5 is the commit of the second batch; a later Write follows.
				path, off, size := entryAt(t, dir, 5)
				tc.damage(t, path, off, size)
				before := snapshot(t, dir)
				l, err := Open(dir, Options{NoSync: true, SegmentSize: segSize, Logger: quiet()})
				if tc.keeps {
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					defer mustClose(t, l)
					d := l.Damage()
					if len(d) != 1 || d[0].Segment != path || d[0].Offset != off || d[0].Position != 5 {
						t.Fatalf("Damage = %v, want position 5 at offset %d of %s", d, off, path)
					}
					contains(t, "reason", d[0].Reason, tc.reason)
					_, err := l.Read(5)
					if ce := asCorrupt(t, err); *ce != *d[0] {
						t.Fatalf("Read(5): %v, want %v", ce, d[0])
					}
					last := uint64(13)
					if next {
						last = 5 // the Write of 6-11 lost its commit
					}
					if l.LastPosition() != last {
						t.Fatalf("LastPosition = %d, want %d", l.LastPosition(), last)
					}
					for p := uint64(1); p <= last; p++ {
						if _, err := l.Read(p); (err == nil) == (p == 5) {
							t.Fatalf("Read(%d): %v", p, err)
						}
					}
					return
				}
				ce := asCorrupt(t, err)
				if ce.Segment != path || ce.Offset != off || ce.Position != 5 {
					t.Fatalf("CorruptError %+v, want segment %s offset %d position 5", ce, path, off)
				}
				contains(t, "reason", ce.Reason, tc.reason)
				contains(t, "reason", ce.Reason, "not a torn write")
				if !reflect.DeepEqual(snapshot(t, dir), before) {
					t.Fatal("Open changed files")
				}
			})
		}
	}
}

// TestRepairDamageInLastWrite loses bytes in the middle of the last Write while later
// bytes of the same Write reached the disk, as a power cut can when pages of an
// unsynced write are flushed out of order: the whole unacknowledged part is cut.
func TestRepairDamageInLastWrite(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true}
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 3, 2)
	// One Write of two atomic batches (group commit): 6-7 and 8-9.
	group := append(genBatch(5, 2), genBatch(7, 2)...)
	if err := l.Write(group); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	for _, tc := range []struct {
		damaged uint64
		keep    []Record
	}{
		{6, want},                       // nothing of the Write survives the damage
		{8, append(want, group[:2]...)}, // its first atomic batch is whole
		{9, append(want, group[:2]...)},
	} {
		t.Run(fmt.Sprint(tc.damaged), func(t *testing.T) {
			d := copyDir(t, dir)
			path, off, size := entryAt(t, d, tc.damaged)
			b, _ := os.ReadFile(path)
			clear(b[off+1 : off+int64(size)])
			os.WriteFile(path, b, 0o640)
			repairs := reopenRepaired(t, d, opts, tc.keep)
			if len(repairs) != 1 {
				t.Fatalf("Repairs = %+v", repairs)
			}
			if tc.damaged < 9 {
				contains(t, "reason", repairs[0].Reason, "of the same unfinished write past the damage")
			}
		})
	}
}

func TestRepairKeep(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{NoSync: true})
	want := writeBatches(t, l, nil, 3, 3)
	mustClose(t, l)
	path, size := lastSegment(t, dir)
	truncateFile(t, path, size-5) // the last batch is torn

	before := snapshot(t, dir)
	for _, keep := range []uint64{4, 6, 100} {
		_, err := Open(dir, Options{NoSync: true, Keep: keep, Logger: quiet()})
		ce := asCorrupt(t, err)
		if ce.Position != 4 || ce.Segment != path {
			t.Fatalf("Keep %d: %+v", keep, ce)
		}
		contains(t, "reason", ce.Reason, fmt.Sprintf("would cut position 4, at or below the kept position %d", keep))
		if !reflect.DeepEqual(snapshot(t, dir), before) {
			t.Fatal("Open changed files")
		}
	}
	reopenRepaired(t, dir, Options{NoSync: true, Keep: 3}, want[:3])

	// A log that needs no cut opens whatever Keep says.
	l = mustOpen(t, dir, Options{NoSync: true, Keep: 100})
	defer mustClose(t, l)
	if r := l.Repairs(); len(r) != 0 {
		t.Fatalf("Repairs = %v", r)
	}
}

func TestSidecars(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 400}
	l := mustOpen(t, src, opts)
	want := writeBatches(t, l, nil, 3, 5, 4, 6, 2, 5, 3)
	segs := l.Segments()
	mustClose(t, l)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	s1, s2 := segs[1].Path, segs[2].Path // their sidecars are to be damaged
	tail := segs[len(segs)-1].Path
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir string)
		rebuilt string // the reason logged, "" if nothing is rebuilt
	}{
		{"deleted", func(t *testing.T, dir string) { os.Remove(sidecarPath(rebase(dir, s1))) }, "no offsets file"},
		{"flipped bit", func(t *testing.T, dir string) { flipBit(t, sidecarPath(rebase(dir, s1)), 30) }, "offsets checksum mismatch"},
		{"truncated", func(t *testing.T, dir string) { truncateFile(t, sidecarPath(rebase(dir, s1)), 10) }, "short offsets file"},
		{"another segment's", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(sidecarPath(rebase(dir, s2)))
			os.WriteFile(sidecarPath(rebase(dir, s1)), b, 0o640)
		}, "offsets file is for position"},
		{"stale ones removed", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(sidecarPath(rebase(dir, s2)))
			os.WriteFile(sidecarPath(rebase(dir, tail)), b, 0o640)                       // the tail has none
			os.WriteFile(sidecarPath(rebase(dir, s2))+tmpExt, b, 0o640)                  // an interrupted write
			os.WriteFile(sidecarPath(filepath.Join(dir, segmentName(999999))), b, 0o640) // no such segment
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			good := snapshot(t, dir)
			tc.damage(t, dir)
			var logs logBuffer
			o := opts
			o.Logger = logs.logger()
			l := mustOpen(t, dir, o)
			checkContent(t, l, want)
			checkFiles(t, l)
			mustClose(t, l)
			if !reflect.DeepEqual(snapshot(t, dir), good) {
				t.Fatal("sidecars differ from the ones written with the segments")
			}
			if tc.rebuilt == "" {
				if strings.Contains(logs.String(), "rebuilt") {
					t.Fatalf("rebuilt a sidecar: %s", logs.String())
				}
				return
			}
			contains(t, "log", logs.String(), "log: rebuilt offsets of segment "+rebase(dir, segs[1].Path)+": "+tc.rebuilt)
		})
	}

	// A sealed segment whose framing does not give the count its name and the next
	// one's imply, with no sidecar to vouch for it, opens: the reads of the records it
	// hides fail with a *CorruptError naming it, every time, and the records before
	// them and the other segments are served.
	sealedBroken := func(t *testing.T, cut func(off int64) int64, check func(t *testing.T, ce *CorruptError, off int64)) {
		dir := copyDir(t, src)
		p := rebase(dir, segs[1].Path)
		os.Remove(sidecarPath(p))
		_, off, _ := entryAt(t, dir, segs[2].First-1)
		truncateFile(t, p, cut(off))
		l := mustOpen(t, dir, Options{NoSync: true, Logger: quiet()})
		defer mustClose(t, l)
		for range 2 { // the damage a load finds is kept: the second read answers from it
			_, err := l.Read(segs[2].First - 1)
			ce := asCorrupt(t, err)
			if ce.Segment != p {
				t.Fatalf("CorruptError %+v", ce)
			}
			check(t, ce, off)
		}
		if _, loads := l.tables.loaded(); loads != 1 {
			t.Fatalf("%d loads, want 1", loads)
		}
		for _, pos := range []uint64{1, segs[1].First, segs[2].First - 2, segs[2].First, uint64(len(want))} {
			if r, err := l.Read(pos); err != nil || !reflect.DeepEqual(r, want[pos-1]) {
				t.Fatalf("Read(%d) = %+v, %v", pos, r, err)
			}
		}
		found, err := l.Scrub(context.Background(), nil)
		if err != nil || len(found) != 1 || found[0].Segment != p {
			t.Fatalf("Scrub = %v, %v; want the damage of %s", found, err, p)
		}
		err = l.Scan(context.Background(), segs[1].First+1, func(Record) error { return nil })
		asCorrupt(t, err)
	}
	t.Run("sealed segment lost data", func(t *testing.T) {
		sealedBroken(t, func(off int64) int64 { return off }, func(t *testing.T, ce *CorruptError, off int64) {
			if ce.Position != segs[2].First-1 {
				t.Fatalf("CorruptError %+v", ce)
			}
			contains(t, "reason", ce.Reason, "but the next segment starts at position")
		})
	})
	t.Run("sealed segment torn", func(t *testing.T) {
		sealedBroken(t, func(off int64) int64 { return off + 3 }, func(t *testing.T, ce *CorruptError, off int64) {
			if ce.Offset != off {
				t.Fatalf("CorruptError %+v", ce)
			}
			contains(t, "reason", ce.Reason, "torn entry")
		})
	})
}

// rebase moves path into dir.
func rebase(dir, path string) string { return filepath.Join(dir, filepath.Base(path)) }

// TestRepairInterrupted crashes in the middle of a repair that removes segments: the
// next Open reaches the same state as an uninterrupted one.
func TestRepairInterrupted(t *testing.T) {
	src := t.TempDir()
	opts := Options{NoSync: true, SegmentSize: 300}
	l := mustOpen(t, src, opts)
	want := writeBatches(t, l, nil, 3, 2)
	committed := len(want)
	want = writeBatches(t, l, want, 14) // spans segments
	mustClose(t, l)
	path, off, _ := entryAt(t, src, uint64(len(want)))
	truncateFile(t, path, off) // lose the commit record

	whole := copyDir(t, src)
	reopenRepaired(t, whole, opts, want[:committed])

	segs, _, _ := listSegments(src)
	for cut := 1; cut < len(segs); cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := copyDir(t, src)
			// The repair removed the last cut segments before the crash.
			for _, s := range segs[len(segs)-cut:] {
				if s.first > uint64(committed) {
					os.Remove(rebase(dir, s.path))
					os.Remove(sidecarPath(rebase(dir, s.path)))
				}
			}
			reopenRepaired(t, dir, opts, want[:committed])
			got, wantFiles := snapshot(t, dir), snapshot(t, whole)
			if !reflect.DeepEqual(got, wantFiles) {
				t.Fatalf("files differ from an uninterrupted repair: %d vs %d files", len(got), len(wantFiles))
			}
		})
	}
}

// TestRepairEmptyTail reopens a log whose last Write ended exactly at a segment
// boundary, leaving an empty tail: nothing is repaired and the old segments are not
// read (their sidecar vouches for the commit).
func TestRepairEmptyTail(t *testing.T) {
	dir := t.TempDir()
	probe := mustOpen(t, t.TempDir(), Options{NoSync: true})
	rec := genBatch(0, 1)
	if err := probe.Write(rec); err != nil {
		t.Fatal(err)
	}
	entry := probe.Segments()[0].Size
	mustClose(t, probe)

	opts := Options{NoSync: true, SegmentSize: int(entry)} // every 1-record batch fills a segment
	l := mustOpen(t, dir, opts)
	want := writeBatches(t, l, nil, 1)
	if n := len(l.Segments()); n != 2 || l.Segments()[1].Size != 0 {
		t.Fatalf("Segments = %+v, want a full one and an empty tail", l.Segments())
	}
	mustClose(t, l)
	repairs := reopenRepaired(t, dir, opts, want)
	if len(repairs) != 0 {
		t.Fatalf("Repairs = %+v", repairs)
	}
}

// FuzzRepairTail appends arbitrary bytes to a log's tail: Open never panics and either
// keeps every committed record, or refuses with a *CorruptError.
func FuzzRepairTail(f *testing.F) {
	next := genBatch(4, 2)
	next[0].Position, next[1].Position = 5, 6
	next[0].WriteStart, next[1].WriteStart = 5, 5
	e := encodedEntry(next[0])
	f.Add(e[:len(e)/2])
	f.Add(make([]byte, 100))
	f.Add(e)
	f.Add(append(e, encodedEntry(next[1])...))
	f.Add(append(append([]byte{0, 0, 0}, e...), 0x7f))
	base := f.TempDir()
	l := mustOpen(f, base, Options{NoSync: true})
	want := writeBatches(f, l, nil, 2, 2)
	mustClose(f, l)
	seg, err := os.ReadFile(filepath.Join(base, segmentName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), append(seg[:len(seg):len(seg)], tail...), 0o640); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{NoSync: true, Logger: quiet()})
		if err != nil {
			asCorrupt(t, err)
			return
		}
		defer l.Close()
		if l.LastPosition() < 4 {
			t.Fatalf("LastPosition = %d, lost committed records", l.LastPosition())
		}
		for i := range want {
			if r, err := l.Read(uint64(i + 1)); err != nil || !reflect.DeepEqual(r, want[i]) {
				t.Fatalf("Read(%d): %v", i+1, err)
			}
		}
	})
}

// everyKind returns every record kind the format defines, found by name: a kind added
// to Kind.String is in every test that ranges over it.
func everyKind() []Kind {
	var kinds []Kind
	for k := range 256 {
		if !strings.HasPrefix(Kind(k).String(), "kind(") {
			kinds = append(kinds, Kind(k))
		}
	}
	return kinds
}

// recordForm is a record of one kind with one combination of flags.
type recordForm struct {
	name string
	rec  Record // Position and WriteStart unset
}

// everyRecordForm returns a valid record of every kind with every combination of the
// flags AppendRecord sets (commit, erased, applied) that DecodeRecord accepts: the
// erased flag goes only on an event without data and metadata, the applied flag only
// with the commit flag.
func everyRecordForm(t testing.TB) []recordForm {
	t.Helper()
	var out []recordForm
	for _, k := range everyKind() {
		r := Record{Kind: k}
		switch k {
		case KindEvent:
			r.Event = Event{ID: testID(99), Stream: "Order$1", Version: 1, Type: "OrderPlaced",
				Timestamp: 1700000000000000000, Data: msgpackMap(1), Metadata: msgpackMap(2)}
		case KindLink:
			r.Link = Link{Stream: "CateringMatch$1", Version: 0, Event: 1, ID: testID(1)}
		case KindDelete:
			r.Delete = Delete{Stream: "Order$2", Before: 1}
		case KindRetention:
			r.Retention = Retention{Stream: "Order$1", MaxAge: 3600e9, MaxCount: 10, TruncateBefore: 1, ExpiredBefore: 1}
		case KindErase:
			r.Erase = Erase{Stream: "Order$1", Before: 1}
		case KindVoid, KindGone:
		default:
			t.Fatalf("no sample record of kind %s: add one here", k)
		}
		forms := len(out)
		for _, commit := range []bool{false, true} {
			for _, erased := range []bool{false, true} {
				for _, applied := range []uint64{0, 1<<40 + 7} {
					f := recordForm{name: k.String(), rec: r}
					f.rec.Commit, f.rec.Applied = commit, applied
					if erased {
						f.rec.Erased, f.rec.Event.Data, f.rec.Event.Metadata = true, nil, nil
					}
					for _, flag := range []struct {
						on   bool
						name string
					}{{commit, "commit"}, {erased, "erased"}, {applied != 0, "applied"}} {
						if flag.on {
							f.name += " " + flag.name
						}
					}
					probe := f.rec
					probe.Position = 5
					if _, err := DecodeRecord(AppendRecord(nil, &probe)); err == nil {
						out = append(out, f)
					}
				}
			}
		}
		if len(out) == forms {
			t.Fatalf("no record of kind %s decodes: is it known to the decoder (lastKind)?", k)
		}
	}
	return out
}

// TestResyncFindsEveryRecordForm puts a record of each kind and flag combination past
// bytes that frame no record: resync, which looks for records where damage broke the
// framing, finds it there, and only there.
func TestResyncFindsEveryRecordForm(t *testing.T) {
	forms := everyRecordForm(t)
	if n := len(forms); n < 3*len(everyKind()) {
		t.Fatalf("%d record forms for %d kinds", n, len(everyKind()))
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			r := f.rec
			r.Position, r.WriteStart = 9, 8
			e := encodedEntry(r)
			for _, junk := range [][]byte{nil, {0}, {0, 0, 0}, {0x7f, 1, 2, 3, 4, 5}} {
				b := append(append([]byte(nil), junk...), e...)
				got := resync(b, 0, 9)
				want := []found{{off: int64(len(junk)), pos: 9, start: 8, proof: 8, commit: r.Commit}}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after %x: resync = %+v, want %+v", junk, got, want)
				}
				if got := resync(b, 0, 10); len(got) != 0 {
					t.Fatalf("after %x: resync from position 10 = %+v, want none", junk, got)
				}
			}
		})
	}
}

// writeOrCopy writes recs with Write, or with Copy if Write refuses them (void, gone
// and erased records, which only a repair or a scavenge writes).
func writeOrCopy(t testing.TB, l *Log, recs []Record) {
	t.Helper()
	recs[0].Position = l.LastPosition() + 1
	err := l.Write(recs)
	if errors.Is(err, ErrInvalid) {
		err = l.Copy(recs)
	}
	if err != nil {
		t.Fatalf("Write and Copy: %v", err)
	}
}

// TestOpenRefusesDamageBeforeLaterWriteOfEveryKind damages a committed record that a
// later Write follows, that Write being one record of each kind and flag combination:
// the damage broke the framing, so only the later record's checksum shows it was
// written later, and Open must find it whatever its kind and flags (the applied flag is
// on the commit record of every write on a cluster node) and refuse to cut the
// acknowledged writes, changing nothing.
func TestOpenRefusesDamageBeforeLaterWriteOfEveryKind(t *testing.T) {
	for _, f := range everyRecordForm(t) {
		if !f.rec.Commit {
			continue // a Write ends with a commit; TestResyncFindsEveryRecordForm has these
		}
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{NoSync: true, Logger: quiet()}
			l := mustOpen(t, dir, opts)
			writeBatches(t, l, nil, 3, 2)
			writeOrCopy(t, l, []Record{f.rec})
			mustClose(t, l)
			path, off, size := entryAt(t, dir, 5)
			b, _ := os.ReadFile(path)
			clear(b[off : off+int64(size)])
			os.WriteFile(path, b, 0o640)
			before := snapshot(t, dir)

			l, err := Open(dir, opts)
			if err == nil {
				defer l.Close()
				t.Fatalf("Open succeeded, LastPosition %d, Repairs %+v", l.LastPosition(), l.Repairs())
			}
			ce := asCorrupt(t, err)
			if ce.Segment != path || ce.Offset != off || ce.Position != 5 {
				t.Fatalf("CorruptError %+v, want segment %s offset %d position 5", ce, path, off)
			}
			contains(t, "reason", ce.Reason, "followed by a valid record written later (position 6")
			if !reflect.DeepEqual(snapshot(t, dir), before) {
				t.Fatal("Open changed files")
			}
		})
	}
}

// TestRepairTornWriteOfEveryKind loses the first record of the last Write while its
// later records reached the disk, a record of each kind and flag combination among
// them: they belong to the same unacknowledged Write, so they are cut with it, and
// the repair counts them.
func TestRepairTornWriteOfEveryKind(t *testing.T) {
	for _, f := range everyRecordForm(t) {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{NoSync: true}
			l := mustOpen(t, dir, opts)
			want := writeBatches(t, l, nil, 3)
			recs := genBatch(3, 3)
			recs[0].Commit = false
			recs[1] = f.rec
			writeOrCopy(t, l, recs)
			mustClose(t, l)
			path, off, size := entryAt(t, dir, 4)
			b, _ := os.ReadFile(path)
			clear(b[off : off+int64(size)])
			os.WriteFile(path, b, 0o640)

			repairs := reopenRepaired(t, dir, opts, want)
			if len(repairs) != 1 || repairs[0].Segment != path || repairs[0].Offset != off || repairs[0].Records != 2 {
				t.Fatalf("Repairs = %+v, want a cut of 2 whole records at offset %d", repairs, off)
			}
			contains(t, "reason", repairs[0].Reason, "2 whole record(s) of the same unfinished write past the damage")
		})
	}
}
