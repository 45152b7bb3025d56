package pm

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestProcessPageBoundedInBytes: a page of a process whose events are large holds the
// newest events that fit in PageBytes (one however large), whatever its limit, and
// reads about that many rather than limit of them.
func TestProcessPageBoundedInBytes(t *testing.T) {
	const n, size, bound = 200, 16 << 10, 64 << 10
	m := bigProcess(t, n, size, 4)
	ctx := context.Background()
	opts := PageOptions{PageBytes: bound}
	if _, err := m.ProcessPage(ctx, "a", -1, 1000, opts); err != nil { // warm the caches
		t.Fatal(err)
	}
	// The least of a few calls: the store's goroutines allocate too.
	var page Process
	alloc := uint64(math.MaxUint64)
	for range 3 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var err error
		page, err = m.ProcessPage(ctx, "a", -1, 1000, opts)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		alloc = min(alloc, after.TotalAlloc-before.TotalAlloc)
	}
	// The fold from the newest snapshot and the snapshots' lookups read a few dozen
	// events whatever the page (1.5 to 4 MiB here): reading the page's 1000 events (all
	// 200, their commands and states) was 12 MiB.
	if alloc > 2*n*size {
		t.Errorf("a page bound to %d bytes allocated %d bytes: the %d events of %d bytes were read", bound, alloc, n, size)
	}
	if len(page.Events) == 0 {
		t.Fatal("an empty page")
	}
	if got := encodedSize(t, page); len(page.Events) > 1 && got > bound {
		t.Errorf("a page of %d events and states of %d bytes, bound %d", len(page.Events), got, bound)
	}
	if page.Older < 0 || page.Older != int64(page.Events[0].Version) {
		t.Errorf("older %d, the page starting at version %d", page.Older, page.Events[0].Version)
	}
}

// TestProcessPagesBoundedInBytes pages through a process whose events are large with
// a bound in bytes: the pages return every event once, each with the state a full
// replay has after it.
func TestProcessPagesBoundedInBytes(t *testing.T) {
	const n, size = 24, 16 << 10
	for _, tt := range []struct {
		name          string
		snapshotEvery int
		pageBytes     int
	}{
		{"with snapshots", 4, 64 << 10},
		{"without snapshots", -1, 64 << 10},
		{"a bound below one event", 4, 1},
		{"a bound above the page", 4, 64 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := bigProcess(t, n, size, tt.snapshotEvery)
			ctx := context.Background()
			full, err := m.Process(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			var read pagesRead
			at := int64(-1)
			for pages := 0; ; pages++ {
				page, err := m.ProcessPage(ctx, "a", at, 10, PageOptions{PageBytes: tt.pageBytes})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) == 0 || len(page.Events) > 10 || pages > len(full.Events) {
					t.Fatalf("page %d (before %d): %d events", pages, at, len(page.Events))
				}
				if got := encodedSize(t, page); len(page.Events) > 1 && got > tt.pageBytes {
					t.Fatalf("page %d (before %d): %d events of %d bytes, bound %d", pages, at, len(page.Events), got, tt.pageBytes)
				}
				for _, e := range page.Events {
					if at >= 0 && int64(e.Version) >= at {
						t.Fatalf("page %d (before %d) holds version %d", pages, at, e.Version)
					}
				}
				read.add(page)
				if page.Older < 0 {
					break
				}
				at = page.Older
			}
			read.check(t, full)
		})
	}
}

// bigProcess is a tally manager, run, whose process "a" handled n events of size bytes
// of data each.
func bigProcess(t *testing.T, n, size, snapshotEvery int) *Manager {
	t.Helper()
	s := openTestStore(t, t.TempDir())
	var applied atomic.Int64
	m, err := New(s, tallyDef("1", &applied), Options{Logger: quietLogger(), SnapshotEvery: snapshotEvery})
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, m, func() {
		for i := range n {
			pad := strings.Repeat(string(rune('a'+i%26)), size)
			if _, err := s.Append(context.Background(), "Facts$a", pmd.Any, pmd.EventData{Type: "Tick", Data: map[string]any{"p": "a", "pad": pad}}); err != nil {
				t.Fatal(err)
			}
		}
	})
	return m
}

// encodedSize is the size in JSON of the data and metadata of the events of page and
// of the states after them.
func encodedSize(t *testing.T, page Process) int {
	t.Helper()
	n := 0
	for i, e := range page.Events {
		b, err := json.Marshal([]any{e.Data, e.Metadata, page.States[i]})
		if err != nil {
			t.Fatal(err)
		}
		n += len(b)
	}
	return n
}
