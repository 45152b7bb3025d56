package pmd_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestScavengeExpiryOfAStreamDeletedMeanwhile: a scavenge reads a page of streams with a
// max age, then reads each one's oldest visible event. A stream deleted between the two
// (here while the scavenge writes the expiry of the stream before it) has nothing left
// to expire: the scavenge goes on. It used to fail with the read's stream_not_found
// (a 404 to POST /v1/admin/scavenge) before rewriting any segment, so that erased data
// stayed on the disk until a scavenge that met no deletion.
func TestScavengeExpiryOfAStreamDeletedMeanwhile(t *testing.T) {
	for _, tc := range []struct {
		name         string
		writtenAgain bool // S$b gets a new event after its deletion
		expired      int  // the streams whose expiry the scavenge records
	}{
		{"deleted", false, 1},
		// S$b exists again when the scavenge comes to it: its expiry is recorded, from
		// the state the scavenge read before the deletion (next version 2), so it
		// expires only the deleted versions 0 and 1. The new event, version 2, was
		// written after the scavenge looked: it stays (checked below).
		{"deleted and written again", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, r := agedStreams(t)
			deleted := make(chan error, 1)
			again := ev("T") // S$b's event written after its deletion
			r.mu.Lock()
			r.before = func() { // S$a's expiry record, the first the scavenge writes
				err := s.DeleteStream(ctx, "S$b", pmd.Any)
				if err == nil && tc.writtenAgain {
					_, err = s.Append(ctx, "S$b", pmd.NoStream, again)
				}
				deleted <- err
			}
			r.mu.Unlock()
			res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
			if err != nil || res.Expired != tc.expired {
				t.Fatalf("Scavenge = %+v, %v; want %d expiries recorded and no error", res, err, tc.expired)
			}
			select {
			case err := <-deleted:
				if err != nil {
					t.Fatalf("deleting S$b during the scavenge: %v", err)
				}
			default:
				t.Fatal("the scavenge wrote no expiry record")
			}
			info, err := s.StreamInfo("S$b")
			if err != nil || info.Exists != tc.writtenAgain || (tc.writtenAgain && info.Version != 2) {
				t.Fatalf("StreamInfo(S$b) = %+v, %v; want Exists %v (version 2 if written again)", info, err, tc.writtenAgain)
			}
			if tc.writtenAgain {
				// The expiry did not kill S$b's new event: it is still found by its id and
				// still in S$b (its max age hides it from S$b's reads, but does not kill it).
				e, err := s.Event(ctx, again.ID)
				if err != nil || e.Stream != "S$b" || e.Version != 2 {
					t.Fatalf("Event(S$b's new event) = %+v, %v; want S$b version 2", e, err)
				}
				if in, err := s.Contains("S$b", e.Position); err != nil || !in {
					t.Fatalf("Contains(S$b, %d) = %v, %v; want true", e.Position, in, err)
				}
			}
			// S$a's events expired and died: nothing shows them any more.
			if got, err := readStream(t, s, "S$a", pmd.ReadOptions{}); err != nil || len(got) != 0 {
				t.Fatalf("S$a reads %v, %v; want nothing", ids(got), err)
			}
			var all []pmd.Event
			for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				if e.Stream == "S$a" {
					all = append(all, e)
				}
			}
			if len(all) != 0 {
				t.Fatalf("$all still shows S$a's expired events %v", ids(all))
			}
		})
	}
}
