package log

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

// TestRewriteLeavesUnchangedSegmentsAlone rewrites every sealed segment of a log in
// which only one segment holds records to replace, as a scavenge does: the other
// segments are read and left as they were, no copy of them ever written (no temp file
// exists while Change sees their records, and none afterwards), their files the same
// inodes with the same modification times; the one segment with replacements is
// rewritten, whichever of its records is the first replaced.
func TestRewriteLeavesUnchangedSegmentsAlone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(n int) int // the index in the chosen segment of its first replaced record
	}{
		{"first record replaced", func(int) int { return 0 }},
		{"a middle record first replaced", func(n int) int { return n / 2 }},
		{"only the last record replaced", func(n int) int { return n - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, Options{NoSync: true, SegmentSize: 2000})
			want := writeBatches(t, l, nil, 10, 20, 30, 5, 25)
			l.sealing.Wait()
			segs := l.Segments()
			sealed := segs[:len(segs)-1]
			if len(sealed) < 3 {
				t.Fatalf("%d sealed segments, want at least 3", len(sealed))
			}
			chosen := sealed[len(sealed)/2]
			// Every event or link of the chosen segment from the first replaced on
			// becomes gone; the records of the other segments are kept.
			from := chosen.First + uint64(tc.first(chosen.Count))
			change := func(r *Record) *Record {
				if r.Position >= from && r.Position < chosen.First+uint64(chosen.Count) &&
					(r.Kind == KindEvent || r.Kind == KindLink) {
					return goneOf(r)
				}
				return nil
			}
			var n int
			for p := from; p < chosen.First+uint64(chosen.Count); p++ {
				if repl := change(&want[p-1]); repl != nil {
					want[p-1] = Record{Position: p, Commit: want[p-1].Commit, WriteStart: want[p-1].WriteStart, Kind: KindGone, Gone: repl.Gone}
					n++
				}
			}
			if n == 0 {
				t.Fatal("the chosen segment has no record to replace: the test shows nothing")
			}
			type fileState struct {
				ino  uint64
				size int64
				mod  int64
			}
			state := func(path string) fileState {
				t.Helper()
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				st, ok := fi.Sys().(*syscall.Stat_t)
				if !ok {
					t.Skip("no inode numbers here")
				}
				return fileState{st.Ino, fi.Size(), fi.ModTime().UnixNano()}
			}
			before := make(map[uint64]fileState)
			for _, s := range sealed {
				before[s.First] = state(s.Path)
			}
			snap := snapshot(t, dir)

			for _, s := range sealed {
				tmp := s.Path + scavengeTmpExt
				var copied bool // a temp file existed while Change saw a kept record
				res, err := l.Rewrite(context.Background(), s.First, RewriteOptions{Change: func(r *Record) *Record {
					repl := change(r)
					if repl == nil && s.First != chosen.First {
						if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
							copied = true
						}
					}
					return repl
				}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("segment %d: the temp file is still there (%v)", s.First, err)
				}
				if s.First == chosen.First {
					if res.Replaced != n || res.BytesBefore != s.Size || res.BytesAfter >= res.BytesBefore {
						t.Fatalf("segment %d: %+v, want %d replaced and fewer bytes than %d", s.First, res, n, s.Size)
					}
					if state(s.Path).ino == before[s.First].ino {
						t.Fatalf("segment %d: rewritten in place, not renamed over", s.First)
					}
					continue
				}
				if copied {
					t.Errorf("segment %d: a copy of it was written though none of its records changes", s.First)
				}
				if res != (RewriteResult{BytesBefore: s.Size, BytesAfter: s.Size}) {
					t.Errorf("segment %d: %+v, want nothing replaced and %d bytes before and after", s.First, res, s.Size)
				}
				if got := state(s.Path); got != before[s.First] {
					t.Errorf("segment %d: the file changed: %+v, was %+v", s.First, got, before[s.First])
				}
			}
			after := snapshot(t, dir)
			for name, b := range snap {
				if name != chosen.Path[len(dir)+1:] && name != sidecarPath(chosen.Path)[len(dir)+1:] && after[name] != b {
					t.Errorf("%s changed", name)
				}
			}
			if len(after) != len(snap) {
				t.Errorf("%d files after the rewrites, %d before", len(after), len(snap))
			}
			checkContent(t, l, want)
			checkFiles(t, l)
			mustClose(t, l)
			l = mustOpen(t, dir, Options{NoSync: true, SegmentSize: 2000})
			checkContent(t, l, want)
			mustClose(t, l)
		})
	}
}
