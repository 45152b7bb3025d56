package pm

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestProcessPageOfAStreamWrittenAgain pages through a process whose stream was deleted
// and written again, so that its first version is past 0: each page holds the versions
// below its before and no later one, and the pages together are the stream, with the
// states of a full replay.
func TestProcessPageOfAStreamWrittenAgain(t *testing.T) {
	for _, tt := range []struct {
		name          string
		snapshotEvery int
	}{
		{"without snapshots", -1},
		{"with snapshots", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t, t.TempDir())
			var applied atomic.Int64
			opts := Options{Logger: quietLogger(), SnapshotEvery: tt.snapshotEvery}
			rng := rand.New(rand.NewPCG(3, 4))
			ticks := func(n int) []string { return slices.Repeat([]string{"Tick"}, n) }
			first, err := New(s, tallyDef("1", &applied), opts)
			if err != nil {
				t.Fatal(err)
			}
			runFor(t, first, func() { appendTicks(t, s, rng, "a", ticks(9)) })
			if err := s.DeleteStream(context.Background(), "Tally$a", pmd.Any); err != nil {
				t.Fatal(err)
			}
			m, err := New(s, tallyDef("1", &applied), opts)
			if err != nil {
				t.Fatal(err)
			}
			runFor(t, m, func() { appendTicks(t, s, rng, "a", ticks(13)) })

			ctx := context.Background()
			full, err := m.Process(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if full.Events[0].Version == 0 {
				t.Fatal("the stream written again starts at version 0")
			}
			var read pagesRead
			before := int64(-1)
			for pages := 0; ; pages++ {
				page, err := m.ProcessPage(ctx, "a", before, 3)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > 3 || pages > len(full.Events) {
					t.Fatalf("page %d (before %d): %d events", pages, before, len(page.Events))
				}
				for _, e := range page.Events {
					if before >= 0 && int64(e.Version) >= before {
						t.Fatalf("page %d (before %d) holds version %d", pages, before, e.Version)
					}
				}
				read.add(page)
				if page.Older < 0 {
					break
				}
				before = page.Older
			}
			read.check(t, full)
		})
	}
}
