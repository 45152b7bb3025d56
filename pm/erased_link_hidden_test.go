package pm_test

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAnErasedProcessLinkedIntoSinceStaysEnded: a process stream erased, then given a
// link (a fact that a manager which had the process cached linked after the erasure),
// then hidden whole by retention. The fold asked Store.Erased about the stream's last
// version, the link's, which the erasure did not cover: the process came back to life at
// its next fact, from the state it starts from, deciding and writing again.
func TestAnErasedProcessLinkedIntoSinceStaysEnded(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	got := &issued{}
	opts := pm.Options{Clock: pmtest.NewClock(time.Now()), Deliver: got.deliver}
	r := start(t, s, matchDef("M"), opts)
	appendFact(t, s, customer("1"))
	r.idle(t)
	r.stop(t)
	if err := s.EraseStream(ctx, "M$1"); err != nil {
		t.Fatal(err)
	}
	noted, err := s.Append(ctx, "Other$1", pmd.Any, pmd.EventData{Type: "Noted"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Link(ctx, "M$1", pmd.Any, noted.IDs[0]); err != nil {
		t.Fatal(err)
	}
	info, err := s.StreamInfo("M$1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "M$1", pmd.Retention{TruncateBefore: uint64(info.Version + 1)}); err != nil {
		t.Fatal(err)
	}

	r = start(t, s, matchDef("M"), opts)
	appendFact(t, s, caterer("1"))
	r.idle(t)
	opts.Clock.(*pmtest.Clock).Advance(2 * timeout)
	r.idle(t)
	if after, err := s.StreamInfo("M$1"); err != nil || after.Version != info.Version {
		t.Fatalf("the erased process wrote again: version %d, was %d (%v)", after.Version, info.Version, err)
	}
	if n := got.count("1", "ConfirmOrder") + got.count("1", "CancelOrder"); n != 0 {
		t.Fatalf("the erased process issued %d commands", n)
	}
}
