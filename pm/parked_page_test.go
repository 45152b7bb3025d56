package pm_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestParkedPages pages through the parked commands, by count and by bytes, while more
// are parked between the pages: each page holds at most its bound (always one), and the
// pages list every command exactly once, in the order of their positions.
func TestParkedPages(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts pm.ParkedOptions
		most int // commands a page may hold
	}{
		{"by count", pm.ParkedOptions{Limit: 5}, 5},
		{"by bytes", pm.ParkedOptions{Bytes: 3 << 10}, 2}, // 1 KiB of data each, and what the command takes besides
		{"one by bytes", pm.ParkedOptions{Bytes: 1}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			def := pm.Definition[string]{
				Name: "W", Handles: []string{"SignedUp"}, ProcessID: pm.DataField("id"),
				Init:  func(string) string { return "" },
				Apply: func(to string, e pmd.Event) string { s, _ := e.Data["id"].(string); return max(to, s) },
				Decide: func(to string) []pm.Command {
					return []pm.Command{{Type: "Welcome", Data: map[string]any{"to": to, "pad": strings.Repeat("x", 1<<10)}}}
				},
			}
			r := start(t, s, def, pm.Options{SnapshotEvery: -1, MaxAttempts: 1,
				Deliver: func(context.Context, pm.Command) error { return errors.New("receiver down") }})
			park := func(from, to int) {
				for i := from; i <= to; i++ {
					appendFact(t, s, pmd.Event{Type: "SignedUp", Data: map[string]any{"id": strconv.Itoa(i)}})
				}
				r.idle(t)
			}
			park(1, 12)
			seen := map[uuid.UUID]bool{}
			var last uint64
			o := tt.opts
			for pages := 0; pages < 100; pages++ {
				page, err := r.Parked(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Commands) == 0 || len(page.Commands) > tt.most {
					t.Fatalf("page %d (from %d): %d commands, want 1 to %d", pages, o.From, len(page.Commands), tt.most)
				}
				for _, pc := range page.Commands {
					if seen[pc.Command.ID] {
						t.Fatalf("page %d (from %d) lists %s again", pages, o.From, pc.Command.ID)
					}
					if pc.Position <= last || pc.Command.Data["pad"] == nil {
						t.Fatalf("page %d lists the command at %d after %d, data %v", pages, pc.Position, last, pc.Command.Data)
					}
					seen[pc.Command.ID], last = true, pc.Position
				}
				if pages == 0 {
					park(13, 14) // parked between pages: listed at the end
				}
				if page.Next < 0 {
					if page.Total != 14 {
						t.Errorf("total %d, want 14", page.Total)
					}
					break
				}
				o.From = uint64(page.Next)
			}
			if len(seen) != 14 {
				t.Fatalf("the pages list %d commands, want 14", len(seen))
			}
		})
	}
}
