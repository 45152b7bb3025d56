package pmd

import (
	"context"
	"testing"
	"time"
)

// TestScavengeWaitsForAnAcknowledgedRetention: the applier answers a batch's writers
// before it indexes the batch, and a scavenge reads the streams' settings from the index.
// A SetRetention that has returned, but that the index does not hold yet, must still
// count: here the applier is held after answering it until the scavenge either waits for
// the index (it is then let go) or finishes without waiting, having read the settings
// from before it.
func TestScavengeWaitsForAnAcknowledgedRetention(t *testing.T) {
	ctx := context.Background()
	s := openQuiet(t)
	h := holdIndex(s)
	if _, err := s.Append(ctx, "S$a", NoStream, EventData{Type: "T"}, EventData{Type: "T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.visible(ctx); err != nil {
		t.Fatal(err)
	}
	h.armed.Store(true)
	if err := s.SetRetention(ctx, "S$a", Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	<-h.held // acknowledged, not indexed
	res, err := h.scavenge(ctx, s)
	if err != nil || res.Expired != 1 {
		t.Fatalf("Scavenge = %+v, %v; want S$a expired: its max age was acknowledged before the scavenge began", res, err)
	}
}
