package pmd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// damageSegment damages the 4th segment file of the closed store in dir as how says and
// returns the positions whose records can no longer be read: the rest of that segment
// from the damage on.
func damageSegment(t *testing.T, dir, how string) (lost []uint64) {
	t.Helper()
	segs := damagetest.Segments(t, dir)
	if len(segs) < 6 {
		t.Fatalf("%d segments, want at least 6", len(segs))
	}
	path := segs[3]
	first, next := damagetest.First(t, path), damagetest.First(t, segs[4])
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The entries' offsets and the bytes of their length prefixes.
	var offs []int
	var prefix []int
	for o := 0; o < len(b); {
		n, k := binary.Uvarint(b[o:])
		if k <= 0 {
			t.Fatalf("segment %s cannot be framed at offset %d", path, o)
		}
		offs, prefix = append(offs, o), append(prefix, k)
		o += k + int(n)
	}
	if uint64(len(offs)) != next-first {
		t.Fatalf("segment %s holds %d entries, want %d", path, len(offs), next-first)
	}
	cut := len(offs) / 2 // the entry the damage starts at
	switch how {
	case "missing":
		cut = 0
		err = os.Remove(path)
	case "cut at an entry boundary":
		err = os.Truncate(path, int64(offs[cut]))
	case "length prefix damaged":
		if prefix[cut] != 2 {
			t.Fatalf("entry %d has a %d-byte length prefix, want 2", cut, prefix[cut])
		}
		b[offs[cut]], b[offs[cut]+1] = 0xff, 0x7f // 16383 bytes: past the end of the file
		err = os.WriteFile(path, b, 0o640)
	case "length prefix swallows the next entry":
		// The entry's length takes in the next entry: the file frames without an
		// error to one entry fewer, every entry after it at the wrong position.
		n := uint64(offs[cut+1]-offs[cut]-prefix[cut]) + uint64(offs[cut+2]-offs[cut+1])
		out := binary.AppendUvarint(slices.Clip(b[:offs[cut]]), n)
		err = os.WriteFile(path, append(out, b[offs[cut]+prefix[cut]:]...), 0o640)
	default:
		t.Fatalf("unknown damage %q", how)
	}
	if err != nil {
		t.Fatal(err)
	}
	if how != "missing" {
		// Without its offsets file the segment must be framed to be read.
		if err := os.RemoveAll(filepath.Join(filepath.Dir(path), "offsets")); err != nil {
			t.Fatal(err)
		}
	}
	for p := first + uint64(cut); p < next; p++ {
		lost = append(lost, p)
	}
	return lost
}

// TestReadsGoOnPastADamagedSealedSegment: a sealed segment that is missing, shorter than
// the next segment's name says, or that cannot be framed past a damaged length prefix
// (its offsets file lost), or whose damaged length prefix swallows the next entry (so that
// it frames to one record fewer, the entries after at the wrong positions), hides the rest
// of its records. Reads and subscribers of $all
// get every other event, meet the damage as few *CorruptErrors naming a lost position at
// or after where they read from (never 0), and go on past it instead of failing on it
// again and again.
func TestReadsGoOnPastADamagedSealedSegment(t *testing.T) {
	for _, c := range []struct {
		how     string
		rebuild bool // the index is rebuilt from the damaged log
	}{
		{"missing", false},
		{"missing", true},
		{"cut at an entry boundary", false},
		{"cut at an entry boundary", true},
		{"length prefix damaged", false},
		{"length prefix damaged", true},
		{"length prefix swallows the next entry", false},
		{"length prefix swallows the next entry", true},
	} {
		how := c.how
		name := how
		if c.rebuild {
			name += ", index rebuilt"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quietLogger(), SegmentSize: 4096}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			const n = 150
			for i := range n {
				mustAppend(t, s, fmt.Sprintf("s-%d", i%3), pmd.Any, ev("E", "i", i, "pad", strings.Repeat("p", 150)))
			}
			all := readAll(t, s, pmd.ReadOptions{})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			lost := damageSegment(t, dir, how)
			if c.rebuild {
				if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
					t.Fatal(err)
				}
			}
			s, err = pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			last := all[len(all)-1].Position

			starts := []uint64{1, lost[0] - 2, lost[0], lost[len(lost)/2], lost[len(lost)-1], lost[len(lost)-1] + 1}
			for _, from := range starts {
				var want []uint64
				for _, e := range all {
					if e.Position >= from && !slices.Contains(lost, e.Position) {
						want = append(want, e.Position)
					}
				}
				check := func(what string, got []uint64, damage []*pmd.CorruptError) {
					backward := strings.HasSuffix(what, "backward") // reads down to from: the damage is below where each read starts
					t.Helper()
					if !slices.Equal(got, want) {
						t.Errorf("%s from %d: got positions %v, want %v", what, from, got, want)
					}
					if len(damage) > 2 {
						t.Errorf("%s from %d: met the damage %d times, want at most 2: %v", what, from, len(damage), damage[:3])
					}
					for _, ce := range damage {
						if ce.Position < from && !backward || !slices.Contains(lost, ce.Position) {
							t.Errorf("%s from %d: %v names position %d, want one of the lost positions %d..%d at or after %d",
								what, from, ce, ce.Position, lost[0], lost[len(lost)-1], from)
						}
					}
				}

				// Paged reads, each going on from after the damage it met.
				var got []uint64
				var damage []*pmd.CorruptError
				for at := from; at <= last && len(damage) <= 2; {
					page := 0
					for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{From: at, Limit: 50}) {
						var ce *pmd.CorruptError
						if errors.As(err, &ce) {
							damage = append(damage, ce)
							at = ce.Position + 1
							page = -1
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, e.Position)
						at = e.Position + 1
						page++
					}
					if page == 0 {
						break
					}
				}
				check("ReadAll", got, damage)

				// Backward, from the end down to from, each going on from before
				// the damage it met.
				got, damage = nil, nil
				for at := last; at >= from && len(damage) <= 2; {
					page := 0
					limit := int(min(50, at-from+1)) // not below from
					for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{From: at, Limit: limit, Backward: true}) {
						var ce *pmd.CorruptError
						if errors.As(err, &ce) {
							damage = append(damage, ce)
							at = ce.Position - 1
							page = -1
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, e.Position)
						at = e.Position - 1
						page++
					}
					if page == 0 || at == 0 {
						break
					}
				}
				slices.Reverse(got)
				check("ReadAll backward", got, damage)

				for _, sub := range []struct {
					name string
					opts pmd.SubscribeOptions
				}{
					{"Subscribe", pmd.SubscribeOptions{From: from}},
					{"Subscribe to types", pmd.SubscribeOptions{From: from, Types: []string{"E"}}},
				} {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					got, damage = nil, nil
					for e, err := range s.Subscribe(ctx, sub.opts) {
						var ce *pmd.CorruptError
						if errors.As(err, &ce) {
							if damage = append(damage, ce); len(damage) > 2 {
								break
							}
							continue
						}
						if err != nil {
							t.Fatalf("%s from %d: %v", sub.name, from, err)
						}
						got = append(got, e.Position)
						if e.Position == last {
							break
						}
					}
					cancel()
					check(sub.name, got, damage)
				}
			}

			// A stream's subscriber meets each of its events the damage hides, by
			// version, and goes on past them. An index rebuilt from the damaged log
			// does not know which streams the lost events were in.
			var want, lostVersions []uint64
			for _, e := range all {
				switch {
				case e.Stream != "s-1":
				case slices.Contains(lost, e.Position):
					if !c.rebuild {
						lostVersions = append(lostVersions, e.Version)
					}
				default:
					want = append(want, e.Position)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var got, versions []uint64
			for e, err := range s.Subscribe(ctx, pmd.SubscribeOptions{Stream: "s-1"}) {
				var ce *pmd.CorruptError
				if errors.As(err, &ce) {
					versions = append(versions, ce.Version)
					if !slices.Contains(lost, ce.Position) || ce.Stream != "s-1" {
						t.Errorf("stream subscriber: %v names position %d of stream %q", ce, ce.Position, ce.Stream)
					}
					if len(versions) > len(lostVersions) {
						break
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if got = append(got, e.Position); e.Position == want[len(want)-1] {
					break
				}
			}
			if !slices.Equal(got, want) || !slices.Equal(versions, lostVersions) {
				t.Errorf("stream subscriber: got positions %v and damaged versions %v, want %v and %v", got, versions, want, lostVersions)
			}
		})
	}
}
