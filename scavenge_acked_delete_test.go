package pmd

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestScavengeWaitsForAnAcknowledgedDelete: the applier answers a batch's writers before
// it indexes the batch, and each segment's rewrite reads its dead marks from the index. A
// DeleteStream that has returned before the scavenge began must count, in a store of its
// own (whose expiry waits for the index) and on a cluster replica's data directory, where
// the scavenge records no expiry and so never waited: there the deleted stream's events
// kept their data until the next scavenge. Here the applier is held after answering the
// deletion until the scavenge either waits for the index (it is then let go) or finishes
// without waiting, having read the dead marks from before it.
func TestScavengeWaitsForAnAcknowledgedDelete(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replica bool // the data directory holds Raft state
		gone    int  // D$1's events removed
		kept    int  // and kept without their data
	}{
		{name: "single node", gone: 5},
		{name: "replica's data directory", replica: true, kept: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			if tc.replica {
				if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Open(dir, Options{NoSync: true, NoScrub: true, SegmentSize: 4096, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			h := holdIndex(s)
			pad := strings.Repeat("x", 500)
			for i, stream := range []string{"D$1", "D$1", "D$1", "D$1", "D$1", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad", "Pad"} {
				if _, err := s.Append(ctx, stream, Any, EventData{Type: "T", Data: map[string]any{"i": i, "pad": pad}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.visible(ctx); err != nil {
				t.Fatal(err)
			}
			h.armed.Store(true)
			if err := s.DeleteStream(ctx, "D$1", Any); err != nil {
				t.Fatal(err)
			}
			<-h.held // acknowledged, not indexed
			res, err := h.scavenge(ctx, s)
			if err != nil || res.ExpirySkipped != tc.replica || res.Gone != tc.gone || res.DeadKept != tc.kept {
				t.Fatalf("Scavenge = %+v, %v; want D$1's 5 events carried out (%d gone, %d kept without their data), its deletion acknowledged before the scavenge began", res, err, tc.gone, tc.kept)
			}
		})
	}
}
