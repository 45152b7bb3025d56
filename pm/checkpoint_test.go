package pm_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestManagerStartsPastABadCheckpointRecord: what a user appends to a process manager's
// checkpoint stream (an ordinary stream, no $), or a damaged record in it, does not stop
// the manager from starting: it resumes from the newest checkpoint it can read, or reads
// every fact again, which changes nothing. As a subscription does with its stream.
func TestManagerStartsPastABadCheckpointRecord(t *testing.T) {
	const mark = "MARK-CKPT-MARK"
	stream := "CateringMatch.checkpoint"
	for _, tc := range []struct {
		name string
		bad  pmd.EventData // appended to the checkpoint stream after a run
	}{
		{"a user's note", pmd.EventData{Type: "Note", Data: map[string]any{"text": "hello"}}},
		{"a note with a position", pmd.EventData{Type: "Note", Data: map[string]any{"position": "soon"}}},
		{"a damaged checkpoint", pmd.EventData{Type: "Checkpoint", Data: map[string]any{"position": 1, "mark": mark}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := damagedStore(t, func(s *pmd.Store) {
				r := start(t, s, matchDef("CateringMatch"), pm.Options{})
				for i := range 3 {
					appendFact(t, s, customer(fmt.Sprint(i)))
					appendFact(t, s, caterer(fmt.Sprint(i)))
				}
				r.idle(t)
				r.stop(t)
				if _, err := s.Append(ctx, stream, pmd.Any, tc.bad); err != nil {
					t.Fatal(err)
				}
				if tc.bad.Data["mark"] != mark { // damage elsewhere, where it changes nothing
					if _, err := s.Append(ctx, "Elsewhere", pmd.Any, pmd.EventData{Type: "N", Data: map[string]any{"mark": mark}}); err != nil {
						t.Fatal(err)
					}
				}
				for range 40 { // the damaged record then lies in a sealed segment
					if _, err := s.Append(ctx, "Noise", pmd.Any, pmd.EventData{Type: "N", Data: map[string]any{"pad": pad}}); err != nil {
						t.Fatal(err)
					}
				}
			}, mark)
			r := start(t, s, matchDef("CateringMatch"), pm.Options{})
			r.idle(t)
			for i := range 3 {
				p, err := r.Process(ctx, fmt.Sprint(i))
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Commands) != 1 || p.Commands[0].Type != "ConfirmOrder" {
					t.Fatalf("process %d: commands %+v, want one ConfirmOrder", i, p.Commands)
				}
			}
			appendFact(t, s, customer("3"))
			appendFact(t, s, caterer("3"))
			r.idle(t)
			if p, err := r.Process(ctx, "3"); err != nil || len(p.Commands) != 1 {
				t.Fatalf("a new process after the start: %+v, %v", p, err)
			}
		})
	}
}
