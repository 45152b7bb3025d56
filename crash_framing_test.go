package pmd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// A sealed segment's offset table is written in the background and not synced: after
// kill -9 (here a copy of the data directory taken while the store is open) it may be
// missing. A flipped bit in a record's length prefix in that segment is damage like any
// other: the store opens, reports the damaged record and serves the rest, as it does when
// the index had been flushed past it.
func TestReopenWithDamagedFramingInASegmentWithoutItsOffsetTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		crash bool // kill -9 (index not flushed) or a clean Close
	}{
		{"after kill -9", true},
		{"after a clean close", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir, crashed := t.TempDir(), filepath.Join(t.TempDir(), "crashed")
			opts := pmd.Options{Logger: quietLogger(), SegmentSize: 2048, NoScrub: true}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 40
			for range n {
				if _, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"pad": strings.Repeat("x", 100)}}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.crash {
				copyDir(t, dir, crashed)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if !tc.crash {
				copyDir(t, dir, crashed)
			}
			segs, _ := filepath.Glob(filepath.Join(crashed, "log", "[0-9]*[0-9]"))
			sort.Strings(segs)
			if len(segs) < 3 {
				t.Fatalf("%d segments, want a sealed one after the first", len(segs))
			}
			if err := os.Remove(filepath.Join(crashed, "log", "offsets", filepath.Base(segs[1])+".offsets")); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			b, err := os.ReadFile(segs[1])
			if err != nil {
				t.Fatal(err)
			}
			hdr, k := binary.Uvarint(b) // the segment header's length, then the first entry's length prefix
			if k <= 0 {
				t.Fatal("no segment header")
			}
			b[int(hdr)+k] ^= 0x10
			if err := os.WriteFile(segs[1], b, 0o640); err != nil {
				t.Fatal(err)
			}

			opts.NoScrub = false // finds the damage the index was flushed past
			opts.ScrubBytesPerSecond = -1
			s, err = pmd.Open(crashed, opts)
			if err != nil {
				t.Fatalf("Open refused: %v", err)
			}
			defer s.Close()
			waitScrub(t, s)
			if got := s.Stats().LastPosition; got != n {
				t.Errorf("last position %d, want %d", got, n)
			}
			if len(s.Problems()) == 0 {
				t.Error("no problem reported for the damaged record")
			}
			// The records after the damage read on.
			got, err := readStream(t, s, pmd.All, pmd.ReadOptions{From: n})
			if err != nil || len(got) != 1 || got[0].Position != n {
				t.Errorf("read of the last event: %d events, %v", len(got), err)
			}
			if _, err := s.Append(ctx, "A-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
				t.Errorf("append after the damage: %v", err)
			}
		})
	}
}
