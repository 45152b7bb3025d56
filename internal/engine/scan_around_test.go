package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestScanAroundADamagedSealedSegment: a scan of the log around a sealed segment whose
// damage hides a run of records (a segment missing after it, or the segment cut short
// with no offsets file to frame it by) calls each for every other record and damaged
// once for every position of the run, in order, with the error naming the whole run
// (but for the run's first record when the scan frames the segment itself: that one is
// the damage framing meets), whether the scan starts before the run or inside it.
func TestScanAroundADamagedSealedSegment(t *testing.T) {
	src, _ := makeStore(t, 300)
	logDir := filepath.Join(src, engine.LogDir)
	l, err := pmdlog.Open(logDir, pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	segs, last := l.Segments(), l.LastPosition()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("%d segments, want 5 or more", len(segs))
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, logDir string)
		first  uint64 // the run's first position, 0 if it depends on the framing
		end    uint64 // the position after the run
	}{
		{"missing segment", func(t *testing.T, logDir string) {
			if err := os.Remove(filepath.Join(logDir, filepath.Base(segs[3].Path))); err != nil {
				t.Fatal(err)
			}
		}, segs[3].First, segs[4].First},
		{"segment cut short", func(t *testing.T, logDir string) {
			if err := os.RemoveAll(filepath.Join(logDir, "offsets")); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filepath.Join(logDir, filepath.Base(segs[2].Path)), segs[2].Size/2); err != nil {
				t.Fatal(err)
			}
		}, 0, segs[3].First},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			logDir := filepath.Join(dir, engine.LogDir)
			tc.damage(t, logDir)
			l, err := pmdlog.Open(logDir, pmdlog.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			scan := func(from uint64) (read, damaged []uint64, run *pmdlog.CorruptError) {
				err := engine.ScanAround(context.Background(), l, from, last, func(r *pmdlog.Record) error {
					read = append(read, r.Position)
					return nil
				}, func(ce *pmdlog.CorruptError, pos uint64) error {
					// The scan that frames the segment meets the run's first
					// record as damage of its own; the rest, as the run.
					switch {
					case ce.End == 0 && ce.Position == pos && len(damaged) == 0:
					case run == nil && ce.End != 0:
						run = ce
					case run == nil || ce.Position != run.Position || ce.End != run.End:
						t.Errorf("position %d: damage %v, want the run's %v", pos, ce, run)
					}
					damaged = append(damaged, pos)
					return nil
				})
				if err != nil {
					t.Fatalf("scan from %d: %v", from, err)
				}
				return read, damaged, run
			}
			read, damaged, run := scan(1)
			if run == nil {
				t.Fatal("no damage met")
			}
			first := tc.first
			if first == 0 {
				first = run.Position
			}
			if run.Position != first || run.End != tc.end || first < segs[2].First {
				t.Fatalf("damage %v, want positions %d to %d", run, first, tc.end-1)
			}
			checkRun := func(from uint64, read, damaged []uint64) {
				t.Helper()
				d, r := 0, 0
				for p := from; p <= last; p++ {
					switch {
					case p >= max(first, from) && p < tc.end:
						if d >= len(damaged) || damaged[d] != p {
							t.Fatalf("from %d: damaged %v, want every position from %d to %d once", from, damaged, max(first, from), tc.end-1)
						}
						d++
					default:
						if r >= len(read) || read[r] != p {
							t.Fatalf("from %d: position %d not read in order (read %d records)", from, p, len(read))
						}
						r++
					}
				}
				if d != len(damaged) || r != len(read) {
					t.Fatalf("from %d: %d read and %d damaged, want %d and %d", from, len(read), len(damaged), r, d)
				}
			}
			checkRun(1, read, damaged)
			// From inside the run: the scan meets the load of the segment's table.
			from := tc.end - 1
			read, damaged, _ = scan(from)
			checkRun(from, read, damaged)
		})
	}
}
