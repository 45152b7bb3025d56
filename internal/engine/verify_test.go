package engine_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const segmentSize = 2048

// stored is an event as written: where and what.
type stored struct {
	ID     uuid.UUID
	Stream string
	I      int
}

// makeStore writes a store of n events in small segments, closes it and returns its
// directory and the events by position: see appendEvents.
func makeStore(t *testing.T, n int) (string, map[uint64]stored) {
	t.Helper()
	dir := t.TempDir()
	events := appendEvents(t, dir, 0, n)
	return dir, events
}

// appendEvents opens the store in dir, appends n events numbered from first, and closes
// it. Event i goes to stream Order$<i%3>, or, when i%5 is 2, to a stream of its own,
// Solo$<i>; every 7th event names the first event of the call as its cause; every 10th is
// linked into All$orders, a stream deleted at the end.
func appendEvents(t *testing.T, dir string, first, n int) map[uint64]stored {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events := make(map[uint64]stored)
	var cause uuid.UUID
	for i := first; i < first+n; i++ {
		stream := fmt.Sprintf("Order$%d", i%3)
		if i%5 == 2 {
			stream = fmt.Sprintf("Solo$%d", i)
		}
		ev := pmd.EventData{Type: "Placed", Data: map[string]any{"i": i, "pad": strings.Repeat("x", 40)}}
		if i%7 == 6 {
			ev.Metadata = map[string]any{pmd.CausationID: cause.String()}
		}
		res, err := s.Append(ctx, stream, pmd.Any, ev)
		if err != nil {
			t.Fatal(err)
		}
		events[res.FirstPosition] = stored{Stream: stream, I: i}
		if i == first {
			cause = idAt(t, s, res.FirstPosition)
		}
		if i%10 == 9 {
			if _, err := s.Link(ctx, "All$orders", pmd.Any, idAt(t, s, res.FirstPosition)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DeleteStream(ctx, "All$orders", pmd.Any); err != nil && n >= 10 {
		t.Fatal(err)
	}
	for ev, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := events[ev.Position]; ok {
			e.ID = ev.ID
			events[ev.Position] = e
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return events
}

func idAt(t *testing.T, s *pmd.Store, pos uint64) uuid.UUID {
	t.Helper()
	for ev, err := range s.ReadAll(context.Background(), pmd.ReadOptions{From: pos, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	t.Fatalf("no event at %d", pos)
	return uuid.Nil
}

// segments returns the log's segment files in position order.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, engine.LogDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 20 {
			out = append(out, filepath.Join(dir, engine.LogDir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// entryAt frames the segment files and returns the file and offset of the entry of pos,
// and the entry's bytes.
func entryAt(t *testing.T, dir string, pos uint64) (string, int64, []byte) {
	t.Helper()
	for _, path := range segments(t, dir) {
		var first uint64
		fmt.Sscanf(filepath.Base(path), "%d", &first)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for off, p := 0, first; off < len(b); p++ {
			n, k := binary.Uvarint(b[off:])
			if p == pos {
				return path, int64(off), b[off : off+k+int(n)]
			}
			off += k + int(n)
		}
	}
	t.Fatalf("position %d not found", pos)
	return "", 0, nil
}

// flip flips a bit of the body of the entry of pos, and returns where it is and its
// bytes before.
func flip(t *testing.T, dir string, pos uint64) (string, int64, []byte) {
	t.Helper()
	path, off, old := entryAt(t, dir, pos)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off+int64(len(old))-3] ^= 0x10
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return path, off, append([]byte(nil), old...)
}

// snapshot returns every file under dir with its bytes.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		m[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func unchanged(t *testing.T, before map[string]string, dir string) {
	t.Helper()
	after := snapshot(t, dir)
	for path, b := range before {
		if after[path] != b {
			t.Errorf("%s changed", path)
		}
	}
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s appeared", path)
		}
	}
}

func verify(t *testing.T, dir string) *engine.VerifyReport {
	t.Helper()
	before := snapshot(t, dir)
	var calls int
	var done, total int64
	r, err := engine.Verify(context.Background(), dir, func(d, tot int64) { calls, done, total = calls+1, d, tot })
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || done != total {
		t.Errorf("progress: %d calls, last %d of %d", calls, done, total)
	}
	unchanged(t, before, dir)
	return r
}

func TestVerifyClean(t *testing.T) {
	dir, events := makeStore(t, 60)
	if len(segments(t, dir)) < 3 {
		t.Fatalf("want several segments, have %v", segments(t, dir))
	}
	r := verify(t, dir)
	if !r.OK() || !r.Agrees || len(r.Notes) != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Events != len(events) || r.Links != 6 || r.Deletes != 1 || r.Records != 67 || r.Index != r.LastPosition || r.LastPosition != 67 {
		t.Fatalf("report %+v", r)
	}
}

// TestVerifyDamage: a flipped byte in a record of a sealed segment and of the tail is
// damage, named by segment, offset and position.
func TestVerifyDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  func(segs []string) uint64
	}{
		{"sealed", func([]string) uint64 { return 3 }},
		{"tail", func(segs []string) uint64 {
			var first uint64
			fmt.Sscanf(filepath.Base(segs[len(segs)-1]), "%d", &first)
			return first + 1 // records of later writes follow it
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := makeStore(t, 60)
			segs := segments(t, dir)
			pos := tc.pos(segs)
			path, off, _ := flip(t, dir, pos)
			if tail := segs[len(segs)-1]; (path == tail) != (tc.name == "tail") {
				t.Fatalf("position %d is in %s, the tail is %s", pos, path, tail)
			}
			r := verify(t, dir)
			if r.OK() || len(r.Damage) != 1 {
				t.Fatalf("report %+v", r)
			}
			if d := r.Damage[0]; d.Segment != path || d.Offset != off || d.Position != pos {
				t.Fatalf("damage %v, want %s offset %d position %d", d, path, off, pos)
			}
			want := fmt.Sprintf("%s offset %d (position %d): ", path, off, pos)
			if !strings.HasPrefix(r.Problems[0], want) {
				t.Fatalf("problems %q, want the first to start with %q", r.Problems, want)
			}
			if r.Records != 67 || r.Events != 59 {
				t.Fatalf("%d records, %d events read around the damage, want 67 and 59", r.Records, r.Events)
			}
		})
	}
}

// TestVerifyTornTail: bytes of an unfinished write at the end are a note.
func TestVerifyTornTail(t *testing.T) {
	dir, _ := makeStore(t, 30)
	segs := segments(t, dir)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x50, 1, 2, 3})
	f.Close()
	r := verify(t, dir)
	if !r.OK() || len(r.Cut) != 1 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "torn tail, cut by the next start") {
		t.Fatalf("report %+v", r)
	}
}

// TestVerifyIndex: an index that is missing, behind the log, cannot be opened or
// differs from the log is reported, and the first three are what the next start fixes.
func TestVerifyIndex(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir, events := makeStore(t, 30)
		if err := os.RemoveAll(filepath.Join(dir, engine.IndexDir)); err != nil {
			t.Fatal(err)
		}
		r := verify(t, dir)
		if !r.OK() || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "no index: the next start builds it from the log") {
			t.Fatalf("report %+v", r)
		}
		readBack(t, dir, events, nil)
	})
	t.Run("behind", func(t *testing.T) {
		dir, events := makeStore(t, 30)
		old := t.TempDir()
		if err := os.CopyFS(old, os.DirFS(filepath.Join(dir, engine.IndexDir))); err != nil {
			t.Fatal(err)
		}
		for p, e := range appendEvents(t, dir, 30, 5) {
			events[p] = e
		}
		replaceIndex(t, dir, old)
		r := verify(t, dir)
		if !r.OK() || !r.Agrees || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "the next start replays 5 record(s)") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("unopenable", func(t *testing.T) {
		dir, events := makeStore(t, 30)
		ents, err := os.ReadDir(filepath.Join(dir, engine.IndexDir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "MANIFEST") {
				if err := os.WriteFile(filepath.Join(dir, engine.IndexDir, e.Name()), []byte("garbage"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
		}
		r := verify(t, dir)
		if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "the index cannot be opened") ||
			!strings.HasSuffix(r.Problems[0], "the next start rebuilds it from the log") {
			t.Fatalf("report %+v", r)
		}
		readBack(t, dir, events, nil)
	})
	t.Run("differs", func(t *testing.T) {
		dir, _ := makeStore(t, 30)
		other, _ := makeStore(t, 20) // behind the log, and other events
		replaceIndex(t, dir, filepath.Join(other, engine.IndexDir))
		r := verify(t, dir)
		if r.OK() || r.Agrees || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "the index disagrees with the log") {
			t.Fatalf("report %+v", r)
		}
	})
}

func replaceIndex(t *testing.T, dir, from string) {
	t.Helper()
	idx := filepath.Join(dir, engine.IndexDir)
	if err := os.RemoveAll(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(idx, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// readBack opens the store in dir and checks that it serves exactly events (all but the
// positions gone), at their positions.
func readBack(t *testing.T, dir string, events map[uint64]stored, gone map[uint64]bool) {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(map[uint64]stored)
	for ev, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscan(fmt.Sprint(ev.Data["i"]), &i)
		got[ev.Position] = stored{ID: ev.ID, Stream: ev.Stream, I: i}
	}
	want := make(map[uint64]stored)
	for p, e := range events {
		if !gone[p] {
			want[p] = e
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %d events, want %d:\n%v\n%v", len(got), len(want), got, want)
	}
	// Every stream serves its events through the index.
	inStream := make(map[string][]uint64)
	for p, e := range want {
		inStream[e.Stream] = append(inStream[e.Stream], p)
	}
	for stream, ps := range inStream {
		var got []uint64
		for ev, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Position)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		if !reflect.DeepEqual(got, ps) {
			t.Fatalf("stream %s serves positions %v, want %v", stream, got, ps)
		}
	}
}

// TestLocked: a directory a pmd has open is refused.
func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := engine.Verify(context.Background(), dir, nil); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("Verify: %v, want ErrLocked", err)
	}
	if _, err := engine.PlanRepair(dir, nil); !errors.Is(err, engine.ErrLocked) {
		t.Fatalf("PlanRepair: %v, want ErrLocked", err)
	}
}

// TestVerifyDamageBeforeRetentionOrErase zeroes the last event of a store, which a
// retention or an erase record written later follows in the same segment: damage no
// crash explains, so verify reports it as such and the store refuses to open, both
// changing nothing, rather than cutting the acknowledged writes as a torn tail. The
// repair's plan (changing nothing until it is applied) cuts it for the operator to
// accept, saying that acknowledged writes are lost with it, up to the later record's
// position (TestRepairOfFramingDamageInTheActiveSegment).
func TestVerifyDamageBeforeRetentionOrErase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(s *pmd.Store) error
	}{
		{"retention", func(s *pmd.Store) error {
			return s.SetRetention(context.Background(), "Order$1", pmd.Retention{MaxCount: 3})
		}},
		{"erase", func(s *pmd.Store) error { return s.EraseStream(context.Background(), "Order$1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := makeStore(t, 20)
			opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()}
			s, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			damaged := s.LastPosition()
			if err := tc.write(s); err != nil {
				t.Fatal(err)
			}
			later := s.LastPosition()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path, off, old := entryAt(t, dir, damaged)
			if p, _, _ := entryAt(t, dir, later); p != path || later != damaged+1 {
				t.Fatalf("the %s record is at position %d in %s, the damaged event at %d in %s", tc.name, later, p, damaged, path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			clear(b[off : off+int64(len(old))])
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)

			// Not verify(t, dir): no progress is reported for a log that cannot be read.
			r, err := engine.Verify(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK() || len(r.Cut) != 0 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "not a torn write") {
				t.Fatalf("report %+v", r)
			}
			if want := fmt.Sprintf("position %d", damaged); !strings.Contains(r.Problems[0], want) {
				t.Fatalf("problem %q does not name %s", r.Problems[0], want)
			}
			p, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatalf("PlanRepair: %v", err)
			}
			if len(p.Actions) != 1 || p.Actions[0].Op != pmdlog.RepairCut || p.Actions[0].Position > damaged || p.Actions[0].Written != later ||
				!strings.Contains(p.Actions[0].Reason, "among them records of writes acknowledged") {
				t.Errorf("plan %q, want a cut from position %d or before, naming the acknowledged writes lost up to %d", p.Lines(), damaged, later)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			unchanged(t, before, dir)

			// The store opens its index before the log (whose Keep it gives), so only
			// the log is sure to stay as it was.
			logDir := filepath.Join(dir, engine.LogDir)
			before = snapshot(t, logDir)
			if s, err := pmd.Open(dir, opts); !errors.Is(err, pmdlog.ErrCorrupt) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want a corrupt error", err)
			}
			unchanged(t, before, logDir)
		})
	}
}

// TestVerifyCountsRetentionAndErase: the records of a retention setting and of an
// erasure are counted by kind, and the counts add up to the records.
func TestVerifyCountsRetentionAndErase(t *testing.T) {
	dir, events := makeStore(t, 20)
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.SetRetention(ctx, "Order$1", pmd.Retention{MaxCount: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "Order$2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := verify(t, dir)
	if !r.OK() || r.Events != len(events) || r.Retentions != 1 || r.Erasures != 1 {
		t.Fatalf("report %+v", r)
	}
	if sum := r.Events + r.Links + r.Deletes + r.Voids + r.Retentions + r.Erasures + r.Gone; sum != r.Records {
		t.Fatalf("counts add up to %d of %d records: %+v", sum, r.Records, r)
	}
}

// TestVerifyIndexAhead: with the AheadFile a cluster node leaves after a failed sync of
// its log, verify reports what Open does with it: a note, and an index ahead of the log
// that the next start rebuilds, not damage.
func TestVerifyIndexAhead(t *testing.T) {
	t.Run("index within the log", func(t *testing.T) {
		dir, _ := makeStore(t, 20)
		if err := os.WriteFile(filepath.Join(dir, engine.AheadFile), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		r := verify(t, dir)
		if !r.OK() || !r.Agrees || len(r.Notes) != 1 || !strings.HasPrefix(r.Notes[0], engine.AheadFile+": ") {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("index ahead of the log", func(t *testing.T) {
		dir, _ := makeStore(t, 20)
		other, _ := makeStore(t, 30) // an index ahead of dir's log
		replaceIndex(t, dir, filepath.Join(other, engine.IndexDir))
		r := verify(t, dir)
		if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "beyond the end of the log") ||
			!strings.Contains(r.Problems[0], "the synced records from position 24 to 34 are lost") {
			t.Fatalf("without %s: report %+v", engine.AheadFile, r)
		}
		if err := os.WriteFile(filepath.Join(dir, engine.AheadFile), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		r = verify(t, dir)
		if !r.OK() || len(r.Notes) != 2 || !strings.Contains(r.Notes[1], "beyond the end of the log") ||
			!strings.HasSuffix(r.Notes[1], "the next start rebuilds it from the log") {
			t.Fatalf("with %s: report %+v", engine.AheadFile, r)
		}
	})
	// Ahead of a log with a torn end and no index.ahead: verify says what the next start
	// does (it opens, cutting the end and reporting the lost records), as it does.
	t.Run("index ahead of a torn log", func(t *testing.T) {
		dir, _ := makeStore(t, 20)
		other, _ := makeStore(t, 30)
		replaceIndex(t, dir, filepath.Join(other, engine.IndexDir))
		segs := segments(t, dir)
		f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte{0x50, 1, 2, 3})
		f.Close()
		r := verify(t, dir)
		if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "the next start cuts that end") ||
			!strings.Contains(r.Problems[0], "reports the synced records it held as lost") {
			t.Fatalf("report %+v", r)
		}
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
		if err != nil {
			t.Fatalf("verify said the next start opens, it refused: %v", err)
		}
		defer s.Close()
		if p := s.Problems(); len(p) == 0 || !strings.Contains(fmt.Sprint(p), "lost") {
			t.Fatalf("the store opened without reporting the lost records: %v", p)
		}
	})
}
