package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// waitScrub waits for the store's background scrub, failing the test after a minute.
func waitScrub(t *testing.T, s *pmd.Store) {
	t.Helper()
	select {
	case <-s.Scrubbed():
	case <-time.After(time.Minute):
		t.Fatal("the scrub did not finish within a minute")
	}
}

// damageOpts are the options of the stores the damage tests write: small segments, so
// that 300 events fill several.
func damageOpts() pmd.Options {
	return pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 16 << 10}
}

// writeMarked writes n events of about 200 bytes to a new store in dir, event i on
// stream Order$(i%3) with the mark MARKER-i-MARKER (4 digits) that damagetest.FlipIn
// finds, and closes it. It returns the events as written and as read back.
func writeMarked(t *testing.T, dir string, n int) (written []pmd.EventData, all []pmd.Event) {
	t.Helper()
	s, err := pmd.Open(dir, damageOpts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := ev("E", "i", i, "pad", strings.Repeat("p", 150), "mark", fmt.Sprintf("MARKER-%04d-MARKER", i))
		written = append(written, e)
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%3), pmd.Any, e)
	}
	all = readAll(t, s, pmd.ReadOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return written, all
}

// reopenDamaged damages the record of the event writeMarked marked victim in dir's
// store, removes the store's index when rebuild (the open rebuilds it from the log),
// opens the store again, logging into logged, and waits for its scrub. It returns the
// store (closed at the test's end), the log and the damaged segment's file name.
func reopenDamaged(t *testing.T, dir string, victim int, rebuild bool) (s *pmd.Store, logged *lockedBuffer, seg string) {
	t.Helper()
	seg = damagetest.FlipIn(t, dir, fmt.Sprintf("MARKER-%04d-MARKER", victim))
	if rebuild {
		if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
			t.Fatal(err)
		}
	}
	logged = new(lockedBuffer)
	opts := damageOpts()
	opts.Logger = slog.New(slog.NewTextHandler(logged, nil))
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatalf("a damaged record must not stop the store from opening: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	waitScrub(t, s)
	return s, logged, seg
}

func TestDamagedRecordIsFoundAndServedAround(t *testing.T) {
	for _, where := range []string{"sealed segment", "tail segment", "sealed segment, index rebuilt"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			const n = 300
			victim := 20 // in the first segment
			if where == "tail segment" {
				victim = n - 5
			}
			// With the index rebuilt, the replay meets the damaged record: it skips it,
			// and the later events of its stream keep their versions.
			rebuild := strings.HasSuffix(where, "index rebuilt")
			written, all := writeMarked(t, dir, n)
			s, logged, seg := reopenDamaged(t, dir, victim, rebuild)
			bad := all[victim].Position
			// Logged with segment, offset and position (contract section 8).
			var line string
			for l := range strings.Lines(logged.String()) {
				if strings.Contains(l, "level=ERROR") && strings.Contains(l, "damaged") {
					line = l
					break
				}
			}
			for _, want := range []string{"segment=" + seg, "offset=", fmt.Sprintf("position=%d", bad)} {
				if !strings.Contains(line, want) {
					t.Fatalf("the damage's log line %q lacks %q; the log:\n%s", line, want, logged.String())
				}
			}
			problems := s.Problems()
			if len(problems) != 1 || !strings.Contains(problems[0], fmt.Sprintf("position %d", bad)) {
				t.Fatalf("Problems() = %q, want one naming position %d", problems, bad)
			}
			if st := s.Stats(); st.DamagedRecords != 1 {
				t.Fatalf("Stats().DamagedRecords = %d, want 1", st.DamagedRecords)
			}

			// $all stops at the damaged record, naming it; the next position goes on.
			var before []pmd.Event
			var cerr *pmd.CorruptError
			for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
				if err != nil {
					if !errors.As(err, &cerr) {
						t.Fatalf("read $all: %v, want a *CorruptError", err)
					}
					break
				}
				before = append(before, e)
			}
			if cerr == nil || cerr.Position != bad || len(before) != victim {
				t.Fatalf("$all read %d events, then %v; want %d events, then damage at %d", len(before), cerr, victim, bad)
			}
			after := readAll(t, s, pmd.ReadOptions{From: bad + 1})
			if len(after) != n-victim-1 || after[0].ID != written[victim+1].ID {
				t.Fatalf("$all from %d read %d events, want the %d after the damage", bad+1, len(after), n-victim-1)
			}
			backward := readAll(t, s, pmd.ReadOptions{From: bad - 1, Backward: true})
			if len(backward) != victim {
				t.Fatalf("$all backward from %d read %d events, want %d", bad-1, len(backward), victim)
			}

			// The stream holding it stops there too, naming its version; an index built
			// after the damage never had it, and the stream reads without it.
			stream := fmt.Sprintf("Order$%d", victim%3)
			got, err := readStream(t, s, stream, pmd.ReadOptions{})
			switch {
			case rebuild:
				if err != nil || len(got) != n/3-1 || got[victim/3].Version != uint64(victim/3)+1 {
					t.Fatalf("read %s: %d events, %v; want all but version %d", stream, len(got), err, victim/3)
				}
			case !errors.As(err, &cerr) || cerr.Stream != stream || cerr.Version != uint64(victim/3):
				t.Fatalf("read %s: %d events, %v; want damage at version %d", stream, len(got), err, victim/3)
			}
			rest, err := readStream(t, s, stream, pmd.ReadOptions{From: uint64(victim/3) + 1})
			if err != nil || len(rest) == 0 && victim/3+1 < n/3 {
				t.Fatalf("read %s after the damage: %d events, %v", stream, len(rest), err)
			}
			// Other events are there by id; the store still takes writes.
			if _, err := s.Event(context.Background(), written[victim+1].ID); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, s, stream, pmd.Any, ev("After"))
		})
	}
}

// TestWritesRecoverFromAFullDisk fills a real, small file system (a tmpfs) until an append
// fails: it fails as unavailable naming the cause, Problems says so, and once space is
// freed appends go on with no restart and nothing acknowledged lost. It needs root.
func TestWritesRecoverFromAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := damagetest.SmallDisk(t, "4m")
	dir := filepath.Join(mnt, "data")
	opts := pmd.Options{Logger: quietLogger(), SegmentSize: 256 << 10, NoScrub: true}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o640); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var acked []pmd.EventData
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("the file system never filled up")
		}
		e := ev("E", "i", i, "pad", strings.Repeat("x", 500))
		if _, err = s.Append(ctx, "Full$1", pmd.Any, e); err != nil {
			break
		}
		acked = append(acked, e)
	}
	if !errors.Is(err, pmd.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ErrUnavailable and ENOSPC", err)
	}
	if p := s.Problems(); len(p) == 0 || !strings.Contains(strings.Join(p, " "), "writes failing") {
		t.Fatalf("Problems() = %q on a full disk, want the failing writes", p)
	}
	// Reads go on meanwhile.
	if got := readAll(t, s, pmd.ReadOptions{}); len(got) != len(acked) {
		t.Fatalf("read %d events on a full disk, %d were acknowledged", len(got), len(acked))
	}
	// A sync (the index flush's, every 10 s) fsyncs what the disk holds, which a
	// full disk does: that shows nothing, and the store stays degraded.
	s.Sync()
	if p := s.Problems(); len(p) == 0 {
		t.Fatal("Problems() is empty after a sync on a still full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Once space is freed, a sync's probe write shows writes work again: a store no
	// client writes to (a load balancer took it out) is healthy again.
	if err := s.Sync(); err != nil {
		t.Fatalf("sync once space is freed: %v", err)
	}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("Problems() = %q after space was freed and the log synced", p)
	}
	more := ev("AfterSpaceFreed")
	if _, err := s.Append(ctx, "Full$1", pmd.Any, more); err != nil {
		t.Fatalf("append once space is freed: %v", err)
	}
	acked = append(acked, more)
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("Problems() = %q after a write succeeded again", p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readStream(t, s, "Full$1", pmd.ReadOptions{})
	if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint(dataIDs(acked)) {
		t.Fatalf("after reopen Full$1 holds %d events (%v), want the %d acknowledged", len(got), err, len(acked))
	}
}

// TestDamagedIndexIsRebuilt damages the index's tables on disk: the scrub finds it,
// Problems says so, and the next start rebuilds the index from the log, which answers
// everything as before.
func TestDamagedIndexIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%50), pmd.Any, ev("E", "i", i))
	}
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// One byte a tenth into the largest table (among the category entries, which sort
	// first): in a block that Open does not read, so the store opens on the damaged index.
	// Halfway in, a table written by one hand-off of the index's overlay holds the
	// index's position, which Open reads. (Damage Open meets is rebuilt at once:
	// TestIndexDamagedAtOpenIsRebuiltAndHealthy.)
	tables, _ := filepath.Glob(filepath.Join(dir, "index", "*.sst"))
	var biggest string
	var size int64
	for _, path := range tables {
		if fi, err := os.Stat(path); err == nil && fi.Size() > size {
			biggest, size = path, fi.Size()
		}
	}
	if biggest == "" {
		t.Fatal("the index has no tables after a close")
	}
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/10] ^= 0x55
	if err := os.WriteFile(biggest, b, 0o640); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatalf("open of a store whose index has a damaged block: %v", err)
	}
	if strings.Contains(logs.String(), "rebuilding it from the log") {
		t.Fatalf("Open read the damaged block (the test must damage another):\n%s", logs.String())
	}
	waitScrub(t, s)
	if p := strings.Join(s.Problems(), "\n"); !strings.Contains(p, "index damaged") {
		t.Fatalf("Problems() = %q, want the damaged index", p)
	}
	s.Close()
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatalf("open after the index was damaged: %v", err)
	}
	defer s.Close()
	if !strings.Contains(logs.String(), "rebuilding it from the log") {
		t.Fatalf("the index was not rebuilt:\n%s", logs.String())
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("the rebuilt index answers differently")
	}
}

// TestSubscribeGoesOnPastADamagedRecord: a subscription meets a damaged record as a
// *CorruptError naming it; a subscriber that goes on gets every later event, stored and
// live, whatever it follows.
func TestSubscribeGoesOnPastADamagedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quietLogger()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n, victim = 40, 17
	for i := range n {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%2), pmd.Any, ev("E", "mark", fmt.Sprintf("MARKER-%04d-MARKER", i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, fmt.Sprintf("MARKER-%04d-MARKER", victim))
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bad := uint64(victim + 1) // positions start at 1

	victimStream := fmt.Sprintf("Order$%d", victim%2)
	cases := []struct {
		name   string
		opts   pmd.SubscribeOptions
		stream bool // follows only the victim's stream
	}{
		{"$all", pmd.SubscribeOptions{}, false},
		{"types", pmd.SubscribeOptions{Types: []string{"E"}}, false},
		{"category", pmd.SubscribeOptions{Category: "Order"}, false},
		{"stream", pmd.SubscribeOptions{Stream: victimStream}, true},
	}
	stored, inVictimStream := n, n/2 // events appended so far, the damaged one included
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := stored // every stored event but the damaged one, and one live
			if c.stream {
				want = inVictimStream
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var got []pmd.Event
			var damage []*pmd.CorruptError
			var live pmd.WriteResult
			for e, err := range s.Subscribe(ctx, c.opts) {
				var ce *pmd.CorruptError
				if errors.As(err, &ce) {
					damage = append(damage, ce)
					// Written after the subscriber met the damage: delivered live.
					live = mustAppend(t, s, victimStream, pmd.Any, ev("E"))
					stored++
					inVictimStream++
					continue
				}
				if err != nil {
					t.Fatalf("after %d events: %v", len(got), err)
				}
				if e.Position == bad {
					t.Fatalf("the damaged record was delivered as an event: %+v", e)
				}
				got = append(got, e)
				if live.LastPosition != 0 && e.Position == live.LastPosition {
					break
				}
			}
			if len(damage) != 1 || damage[0].Position != bad {
				t.Fatalf("damage met: %v, want one *CorruptError at position %d", damage, bad)
			}
			if len(got) != want {
				t.Fatalf("delivered %d events, want %d: every one but the damaged one, and the live one", len(got), want)
			}
		})
	}
}

// TestDamageAReadMeetsIsAProblem: a record that goes bad after the scrub read it (here:
// with no scrub) is reported once a read meets it, as damage found at Open is.
func TestDamageAReadMeetsIsAProblem(t *testing.T) {
	dir := t.TempDir()
	var logged lockedBuffer
	// Small segments: the damage is in a sealed one, which Open does not read.
	opts := pmd.Options{NoSync: true, NoScrub: true, SegmentSize: 16 << 10, Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustAppend(t, s, "Order$1", pmd.Any, ev("E", "pad", strings.Repeat("p", 150), "mark", fmt.Sprintf("MARKER-%04d-MARKER", i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "MARKER-0003-MARKER")
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("problems before any read met the damage: %q", p)
	}
	var cerr *pmd.CorruptError
	for _, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if errors.As(err, &cerr) {
			break
		}
	}
	if cerr == nil || cerr.Position != 4 {
		t.Fatalf("read of $all met %v, want damage at position 4", cerr)
	}
	p := s.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "position 4") {
		t.Fatalf("problems after a read met the damage: %q, want one naming position 4", p)
	}
	if st := s.Stats(); st.DamagedRecords != 1 {
		t.Fatalf("Stats().DamagedRecords = %d, want 1", st.DamagedRecords)
	}
	if !strings.Contains(logged.String(), "damaged log record") || !strings.Contains(logged.String(), "position=4") {
		t.Fatalf("the damage is not logged:\n%s", logged.String())
	}
}
