package index

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// A hand-off builds every key and value of its table in buffers it reuses: built from
// nil each time, the keys took up to three allocations each, 5.5 keys per event, on the
// path of every append (bench/README.md, session 23).
func TestWriteOverlayReusesItsKeyBuffers(t *testing.T) {
	x := openTest(t, t.TempDir())
	const events = 2000
	b := x.NewBatch()
	for i := range events {
		if _, err := b.AddEvent(uint64(i+1), uuid.New(), fmt.Sprintf("Order-%d", i/10), "OrderPlaced"); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	x.ov.mu.RLock()
	f := x.ov.active
	x.ov.mu.RUnlock()
	if f.entries < 5*events {
		t.Fatalf("the overlay holds %d entries, want at least %d", f.entries, 5*events)
	}
	f.names = make([]string, 0, len(f.streams))
	for n := range f.streams {
		f.names = append(f.names, n)
	}
	slices.Sort(f.names)
	fs := vfs.NewMem()
	run := 0
	allocs := testing.AllocsPerRun(3, func() {
		run++
		file, err := fs.Create(fmt.Sprintf("t%d.sst", run), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(file), x.ov.wopts)
		if err := writeOverlay(w, f); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	// The writer's own blocks and the sorted ids and names take some; a key each would
	// take more than the entries.
	if limit := float64(f.entries) / 10; allocs > limit {
		t.Errorf("writing a table of %d entries took %.0f allocations, want at most %.0f", f.entries, allocs, limit)
	}
}
