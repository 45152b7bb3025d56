package pm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestWaitIdleReturnsWhenRunFailsToLoad: a Run that fails while it loads (here on a
// damaged command record, which stops Run: see doc.go) makes WaitIdle and WaitHandled
// return its error, as they do for a failure after the start. They used to wait until
// their context ended.
func TestWaitIdleReturnsWhenRunFailsToLoad(t *testing.T) {
	def := matchDef("CateringMatch")
	decide := def.Decide
	def.Decide = func(s match) []pm.Command {
		out := decide(s)
		for i := range out {
			out[i].Data = map[string]any{"order_id": s.Order, "pad": pad, "mark": "MARK-" + s.Order + "-MARK"}
		}
		return out
	}
	opts := pm.Options{Logger: quiet()}
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, def, opts)
		for i := range 3 {
			appendFact(t, s, customer(fmt.Sprint(i)))
		}
		r.idle(t)
		r.stop(t)
		sealWithNoise(t, s)
	}, "MARK-1-MARK")
	m, err := pm.New(s, def, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); !errors.Is(err, pmd.ErrCorrupt) {
		t.Fatalf("Run: %v, want the damaged record", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitIdle(ctx); !errors.Is(err, pmd.ErrCorrupt) {
		t.Errorf("WaitIdle: %v, want Run's error", err)
	}
	if err := m.WaitHandled(ctx, s.LastPosition()); !errors.Is(err, pmd.ErrCorrupt) {
		t.Errorf("WaitHandled: %v, want Run's error", err)
	}
}
