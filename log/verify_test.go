package log

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestVerifySidecars(t *testing.T) {
	src := t.TempDir()
	l := mustOpen(t, src, Options{NoSync: true, SegmentSize: 400})
	writeBatches(t, l, nil, 3, 5, 4, 6, 2, 5, 3)
	segs := l.Segments()
	mustClose(t, l)
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	s1 := segs[1]
	type found struct {
		segment string // base name
		rebuilt bool
		reason  string
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []found
	}{
		{"clean", func(*testing.T, string) {}, nil},
		{"missing", func(t *testing.T, dir string) {
			if err := os.Remove(sidecarPath(rebase(dir, s1.Path))); err != nil {
				t.Fatal(err)
			}
		}, []found{{filepath.Base(s1.Path), true, "no offsets file"}}},
		{"flipped bit", func(t *testing.T, dir string) { flipBit(t, sidecarPath(rebase(dir, s1.Path)), 30) },
			[]found{{filepath.Base(s1.Path), true, "offsets checksum mismatch: stored"}}},
		{"another segment's", func(t *testing.T, dir string) {
			b, err := os.ReadFile(sidecarPath(rebase(dir, segs[2].Path)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sidecarPath(rebase(dir, s1.Path)), b, 0o640); err != nil {
				t.Fatal(err)
			}
		}, []found{{filepath.Base(s1.Path), true, "offsets file is for position " + strconv.FormatUint(segs[2].First, 10)}}},
		{"wrong offsets", func(t *testing.T, dir string) {
			p := rebase(dir, s1.Path)
			offs, err := scanOffsets(p)
			if err != nil {
				t.Fatal(err)
			}
			offs[2]++ // still increasing and inside the segment: the file decodes and fits
			b := appendOffsets(nil, &offsetTable{first: s1.First, size: s1.Size, offs: offs})
			if err := os.WriteFile(sidecarPath(p), b, 0o640); err != nil {
				t.Fatal(err)
			}
		}, []found{{filepath.Base(s1.Path), false, "offsets file puts entry 2 (position " + strconv.FormatUint(s1.First+2, 10) + ") at offset"}}},
		{"damaged segment is left out", func(t *testing.T, dir string) {
			_, off, _ := entryAt(t, dir, segs[2].First-1)
			truncateFile(t, rebase(dir, s1.Path), off+3)
		}, nil},
		{"sidecars of the tail and of no segment are not read", func(t *testing.T, dir string) {
			for _, p := range []string{rebase(dir, segs[len(segs)-1].Path), filepath.Join(dir, segmentName(999999))} {
				if err := os.WriteFile(sidecarPath(p), []byte("junk"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			tc.damage(t, dir)
			before := snapshot(t, dir)
			got, err := VerifySidecars(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("VerifySidecars = %v, want %d problem(s)", got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Segment != rebase(dir, w.segment) || g.Rebuilt != w.rebuilt {
					t.Fatalf("VerifySidecars[%d] = %+v, want %+v", i, g, w)
				}
				contains(t, "reason", g.Reason, w.reason)
				contains(t, "error", g.Error(), g.Segment)
			}
			if !reflect.DeepEqual(snapshot(t, dir), before) {
				t.Fatal("VerifySidecars changed files")
			}
		})
	}
}

func TestVerifySidecarsMissingDir(t *testing.T) {
	_, err := VerifySidecars(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("VerifySidecars = %v, want fs.ErrNotExist", err)
	}
}
