package pm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestParkedCommandOfAnErasedProcessShowsNoData: a parked command of a process whose
// stream was erased since it was issued is listed (Parked, what the parked route, pmd
// parked and the web page show) without its data, which the erasure erased with its
// record; the parked command of a process not erased keeps its data.
func TestParkedCommandOfAnErasedProcessShowsNoData(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	def := pm.Definition[string]{
		Name: "W", Handles: []string{"SignedUp"}, ProcessID: pm.DataField("id"),
		Init:  func(string) string { return "" },
		Apply: func(to string, e pmd.Event) string { s, _ := e.Data["email"].(string); return max(to, s) },
		Decide: func(to string) []pm.Command {
			return []pm.Command{{Type: "Welcome", Data: map[string]any{"to": to}}}
		},
	}
	r := start(t, s, def, pm.Options{SnapshotEvery: -1, MaxAttempts: 1,
		Deliver: func(context.Context, pm.Command) error { return errors.New("receiver down") }})
	for _, id := range []string{"1", "2"} {
		appendFact(t, s, pmd.Event{Type: "SignedUp", Data: map[string]any{"id": id, "email": id + "@example.com"}})
	}
	r.idle(t)
	if err := s.EraseStream(ctx, "W$1"); err != nil {
		t.Fatal(err)
	}
	parked := r.Parked()
	if len(parked) != 2 {
		t.Fatalf("%d commands parked, want 2: %+v", len(parked), parked)
	}
	for _, pc := range parked {
		switch pc.Command.ProcessID {
		case "1":
			if pc.Command.Data != nil {
				t.Errorf("the parked command of the erased process shows its erased data: %v", pc.Command.Data)
			}
		case "2":
			if pc.Command.Data["to"] != "2@example.com" {
				t.Errorf("the parked command of process 2, not erased, shows the data %v", pc.Command.Data)
			}
		}
	}
}
