package log

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestReadOnly shows that a read-only Open of a log with a torn tail, damaged records
// in sealed segments and the tail, and a missing offsets file changes no file, serves
// exactly what an Open without ReadOnly keeps, reports the same repairs and damage, and
// refuses writes.
func TestReadOnly(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, want, damaged := damagedLog(t, opts)
	tail := lastSegmentPath(t, dir)
	appendFile(t, tail, []byte{0x50, 1, 2, 3}) // an entry of 80 bytes, 3 written
	if err := os.Remove(sidecarPath(filepath.Join(dir, segmentName(1)))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	ro := mustOpen(t, dir, Options{ReadOnly: true, SegmentSize: 500})
	if got := snapshot(t, dir); !reflect.DeepEqual(got, before) {
		t.Fatal("a read-only Open changed the files")
	}
	if ro.LastPosition() != uint64(len(want)) {
		t.Fatalf("LastPosition = %d, want %d", ro.LastPosition(), len(want))
	}
	if r := ro.Repairs(); len(r) != 1 || r[0].Segment != tail || r[0].Bytes != 4 {
		t.Fatalf("Repairs = %+v, want the 4 torn bytes of %s", r, tail)
	}
	if d := ro.Damage(); len(d) != 1 || d[0].Position != damaged[3] {
		t.Fatalf("Damage = %v, want position %d", d, damaged[3])
	}
	bad := make(map[uint64]bool)
	for _, p := range damaged {
		bad[p] = true
	}
	for i := range want {
		pos := uint64(i + 1)
		got, err := ro.Read(pos)
		if bad[pos] {
			if ce := asCorrupt(t, err); ce.Position != pos {
				t.Fatalf("Read(%d): %v", pos, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("Read(%d) = %+v, %v; want %+v", pos, got, err, want[i])
		}
	}
	found, err := ro.Scrub(context.Background(), nil)
	if err != nil || len(found) != len(damaged) {
		t.Fatalf("Scrub = %v, %v; want positions %v", found, err, damaged)
	}
	if err := ro.Write(genBatch(ro.LastPosition(), 1)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Write: %v, want ErrReadOnly", err)
	}
	if err := ro.Sync(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Sync: %v, want ErrReadOnly", err)
	}
	mustClose(t, ro)
	if got := snapshot(t, dir); !reflect.DeepEqual(got, before) {
		t.Fatal("a read-only Log changed the files")
	}

	// The same as what an Open without ReadOnly keeps.
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if l.LastPosition() != uint64(len(want)) || !reflect.DeepEqual(l.Repairs(), ro.Repairs()) {
		t.Fatalf("Open: last %d, repairs %+v; read-only: repairs %+v", l.LastPosition(), l.Repairs(), ro.Repairs())
	}
}

// TestReadOnlyEmpty: a read-only Open of an empty directory serves an empty log, and of
// a missing one fails without creating it.
func TestReadOnlyEmpty(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{ReadOnly: true})
	if l.LastPosition() != 0 {
		t.Fatalf("LastPosition = %d", l.LastPosition())
	}
	if err := l.Scan(context.Background(), 1, func(Record) error { return errors.New("a record") }); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the directory holds %v", ents)
	}
	missing := filepath.Join(dir, "nope")
	if _, err := Open(missing, Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing directory: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory was created: %v", err)
	}
}
