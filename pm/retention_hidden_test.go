package pm_test

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAProcessWhoseRecordsRetentionHidesGoesOn: retention set on a process stream (an
// admin's truncate_before at its next version) hides every record of it, though the
// stream exists. The fold read nothing, and the manager wrote its next decision expecting
// the version before 0 (2^64-1 as a uint64): it gave up after 64 conflicts and stopped,
// and pmd serve with it, again at every start. The process goes on from the state it
// starts from, its versions from the last one the stream assigned.
func TestAProcessWhoseRecordsRetentionHidesGoesOn(t *testing.T) {
	s, opts, _, info := hiddenProcess(t, false, nil)
	r := start(t, s, matchDef("M"), opts)
	appendFact(t, s, caterer("1"))
	r.idle(t) // fails once the manager stopped
	shown := processStream(t, s, "M$1")
	if len(shown) == 0 || shown[0].Version != uint64(info.Version+1) {
		t.Fatalf("process stream after the fact: %d records, first at %v; want them from version %d", len(shown), shown, info.Version+1)
	}
}

// TestAnErasedProcessWhoseRecordsRetentionHidesStaysEnded: a process stream erased (the
// process ended for good) and then hidden whole by retention came back to life at its
// next fact, from the state it starts from, deciding and writing again. So it did when a
// fact was linked into the stream after the erasure (by a manager that had the process
// cached): the fold asked Store.Erased about the stream's last version, the link's,
// which the erasure did not cover.
func TestAnErasedProcessWhoseRecordsRetentionHidesStaysEnded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		since func(t *testing.T, s *pmd.Store)
	}{
		{"erased", nil},
		{"a fact linked into it since", func(t *testing.T, s *pmd.Store) {
			ctx := context.Background()
			noted, err := s.Append(ctx, "Other$1", pmd.Any, pmd.EventData{Type: "Noted"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Link(ctx, "M$1", pmd.Any, noted.IDs[0]); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, opts, got, info := hiddenProcess(t, true, tc.since)
			clock := opts.Clock.(*pmtest.Clock)
			r := start(t, s, matchDef("M"), opts)
			appendFact(t, s, caterer("1"))
			r.idle(t)
			clock.Advance(2 * timeout)
			r.idle(t)
			if after, err := s.StreamInfo("M$1"); err != nil || after.Version != info.Version {
				t.Fatalf("the erased process wrote again: version %d, was %d (%v)", after.Version, info.Version, err)
			}
			if n := got.count("1", "ConfirmOrder") + got.count("1", "CancelOrder"); n != 0 {
				t.Fatalf("the erased process issued %d commands", n)
			}
		})
	}
}

// hiddenProcess returns a store holding process M$1 of matchDef("M") after its first
// fact, then erased if erase, then changed by since if not nil, with every record of
// its stream hidden by retention; the options to run the manager again (their Deliver
// counts into got), and the stream as it was before.
func hiddenProcess(t *testing.T, erase bool, since func(*testing.T, *pmd.Store)) (*pmd.Store, pm.Options, *issued, pmd.StreamInfo) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	got := &issued{}
	opts := pm.Options{Clock: pmtest.NewClock(time.Now()), Deliver: got.deliver}
	r := start(t, s, matchDef("M"), opts)
	appendFact(t, s, customer("1"))
	r.idle(t)
	r.stop(t)
	// The settings come from a store no manager was made on (an earlier release, or a
	// program that makes none), which keeps no stream whole.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if erase {
		if err := s.EraseStream(ctx, "M$1"); err != nil {
			t.Fatal(err)
		}
	}
	if since != nil {
		since(t, s)
	}
	info, err := s.StreamInfo("M$1")
	if err != nil || !info.Exists || info.Version < 0 {
		t.Fatalf("process stream: %+v, %v", info, err)
	}
	if err := s.SetRetention(ctx, "M$1", pmd.Retention{TruncateBefore: uint64(info.Version + 1)}); err != nil {
		t.Fatal(err)
	}
	if n := len(processStream(t, s, "M$1")); n != 0 {
		t.Fatalf("%d records of the process shown, want none", n)
	}
	return s, opts, got, info
}
