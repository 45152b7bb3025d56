package log

import (
	"os"
	"reflect"
	"testing"
)

// unsyncedFlag reads whether the record at pos of the closed log in dir carries
// flagUnsynced.
func unsyncedFlag(t *testing.T, dir string, pos uint64) bool {
	t.Helper()
	path, off, _ := entryAt(t, dir, pos)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, ok := entry(b[off:])
	if !ok || len(raw) < headerSize {
		t.Fatalf("position %d: no entry at offset %d", pos, off)
	}
	return raw[6]&flagUnsynced != 0
}

// write is one step of a test's history: a Write, a WriteNoSync or a Sync.
type write struct {
	n      int // records; 0 for a Sync
	noSync bool
}

// TestOpenCutsPowerCutAfterWriteNoSync loses a record written by WriteNoSync, as a
// power cut that loses an unsynced page and keeps a later one does, and reopens. The
// writes after it that no fsync preceded carry flagUnsynced and prove nothing of it:
// Open cuts the torn end, as WriteNoSync's doc promises (a cluster node's Raft log
// supplies the records again). A later write that began after an fsync (a synced Write
// or a Sync before it) still shows the lost record was durable: Open refuses, changing
// nothing. So does a cut at or below Options.Keep. Before, every later write counted as
// proof, and a cluster node's log never opened again after such a power cut.
func TestOpenCutsPowerCutAfterWriteNoSync(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writes  []write
		damaged uint64
		flip    bool   // flip a bit of the record instead of zeroing its entry
		keep    uint64 // Options.Keep
		want    uint64 // last position kept; 0 when Open must refuse
		reason  string // in the Repair, or in the refusal
	}{
		{name: "lost page", writes: []write{{3, false}, {1, true}, {1, true}, {1, true}, {1, true}, {1, true}},
			damaged: 4, want: 3, reason: "4 whole record(s) of later writes past the damage, written without an fsync after it"},
		{name: "flipped bit", writes: []write{{3, false}, {1, true}, {2, true}, {1, true}},
			damaged: 4, flip: true, want: 3, reason: "checksum mismatch"},
		{name: "lost page of a later unsynced write", writes: []write{{3, false}, {1, true}, {1, true}, {2, true}, {1, true}},
			damaged: 6, want: 5, reason: "of later writes past the damage, written without an fsync after it"},
		{name: "lost page after a synced Write", writes: []write{{3, false}, {1, true}},
			damaged: 3, reason: "followed by a valid record written later (position 4"},
		{name: "lost page before a Sync", writes: []write{{3, false}, {1, true}, {1, true}, {0, false}, {1, true}},
			damaged: 4, reason: "followed by a valid record written later (position 6"},
		{name: "lost page before a synced Write", writes: []write{{3, false}, {1, true}, {1, false}, {1, true}},
			damaged: 4, reason: "followed by a valid record written later (position 6"},
		{name: "lost page below Keep", writes: []write{{3, false}, {1, true}, {1, true}, {1, true}},
			damaged: 4, keep: 5, reason: "at or below the kept position 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{})
			var all []Record
			var unproven bool
			wantFlag := map[uint64]bool{}
			for _, w := range tc.writes {
				if w.n == 0 {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
					unproven = false
					continue
				}
				recs := genBatch(l.LastPosition(), w.n)
				write := l.Write
				if w.noSync {
					write = l.WriteNoSync
				}
				if err := write(recs); err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					wantFlag[r.Position] = unproven
				}
				unproven = w.noSync
				all = append(all, recs...)
			}
			l.sealing.Wait()
			l.wal.Close() // a crash: the Log is dropped
			for pos, want := range wantFlag {
				if got := unsyncedFlag(t, dir, pos); got != want {
					t.Fatalf("record %d: flagUnsynced %t, want %t", pos, got, want)
				}
			}
			path, off, size := entryAt(t, dir, tc.damaged)
			if tc.flip {
				flipBit(t, path, off+int64(size)/2)
			} else {
				b, _ := os.ReadFile(path)
				clear(b[off : off+int64(size)])
				os.WriteFile(path, b, 0o640)
			}
			before := snapshot(t, dir)

			opts := Options{Keep: tc.keep, Logger: quiet()}
			l, err := Open(dir, opts)
			if tc.want == 0 {
				if err == nil {
					defer l.Close()
					t.Fatalf("Open succeeded, LastPosition %d, Repairs %+v", l.LastPosition(), l.Repairs())
				}
				ce := asCorrupt(t, err)
				if ce.Segment != path || ce.Offset != off || ce.Position != tc.damaged {
					t.Fatalf("CorruptError %+v, want segment %s offset %d position %d", ce, path, off, tc.damaged)
				}
				contains(t, "reason", ce.Reason, tc.reason)
				if !reflect.DeepEqual(snapshot(t, dir), before) {
					t.Fatal("Open changed files")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer mustClose(t, l)
			checkContent(t, l, all[:tc.want])
			if r := l.Repairs(); len(r) != 1 || r[0].Segment != path || r[0].Offset != entryEnd(t, dir, path, tc.want) {
				t.Fatalf("Repairs = %+v, want one cut after position %d", r, tc.want)
			} else {
				contains(t, "reason", r[0].Reason, tc.reason)
			}
		})
	}
}

// entryEnd is the offset in path, of the log in dir, where the entry after pos starts.
func entryEnd(t *testing.T, dir, path string, pos uint64) int64 {
	t.Helper()
	p, off, size := entryAt(t, dir, pos)
	if p != path {
		t.Fatalf("position %d is in %s, not %s", pos, p, path)
	}
	return off + int64(size)
}
