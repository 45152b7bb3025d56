package pm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// snapState is the state of snapDef: the events linked, and a mark of the last one that
// only its snapshots hold.
type snapState struct {
	N    int
	Mark string
}

// snapDef issues the command Ack with the key k<n> at the n-th event of a process.
func snapDef() pm.Definition[snapState] {
	return pm.Definition[snapState]{
		Name:      "Snapped",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) snapState { return snapState{} },
		Apply: func(s snapState, e pmd.Event) snapState {
			if e.Link {
				s.N++
				s.Mark = fmt.Sprintf("SNAP-%d-SNAP", s.N)
			}
			return s
		},
		Decide: func(s snapState) []pm.Command {
			var out []pm.Command
			for i := 1; i <= s.N; i++ {
				out = append(out, pm.Command{Type: "Ack", Key: fmt.Sprintf("k%d", i)})
			}
			return out
		},
	}
}

// TestADamagedSnapshotOnlyMakesAFoldLonger: a damaged snapshot record (a bad sector)
// is passed over, logged, for the snapshot before it or the first event, as the package
// doc says: the fold used to fail on it, which stopped Run at the next event of the
// process, and again at every start, and failed the views of the process.
func TestADamagedSnapshotOnlyMakesAFoldLonger(t *testing.T) {
	ctx := context.Background()
	opts := pm.Options{SnapshotEvery: 2}
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, snapDef(), opts)
		for range 3 {
			appendFact(t, s, goFact("1"))
			r.idle(t)
		}
		r.stop(t)
		sealWithNoise(t, s)
	}, "SNAP-3-SNAP")
	var logs lockedLog
	opts.Logger = logs.logger()
	r := start(t, s, snapDef(), opts)
	appendFact(t, s, goFact("1"))
	r.idle(t)
	v, err := r.ProcessPage(ctx, "1", -1, 100)
	if err != nil || len(v.Commands) != 4 || v.State != (snapState{N: 4, Mark: "SNAP-4-SNAP"}) {
		t.Fatalf("ProcessPage: %d commands, state %+v, %v; want 4 commands and the 4th event folded", len(v.Commands), v.State, err)
	}
	if list, err := r.Processes(ctx, "", 0); err != nil || len(list) != 1 {
		t.Errorf("Processes: %+v, %v; want the process", list, err)
	}
	r.stop(t)
	if n := len(logs.lines("damaged snapshot")); n == 0 {
		t.Errorf("the damaged snapshot is not logged:\n%s", strings.Join(logs.lines("snapshot"), "\n"))
	}
	// A start folds the process again past the damaged snapshot: each command is
	// written once, the one the damaged snapshot's fold issued too (ProcessPage lists a
	// command by its key, once, whatever number of records it has).
	r = start(t, s, snapDef(), opts)
	appendFact(t, s, goFact("1"))
	r.idle(t)
	r.stop(t)
	written := map[string]int{}
	for _, e := range processStream(t, s, "Snapped$1") {
		if !e.Link {
			key, _ := e.Metadata[pm.MetaKey].(string)
			written[key]++
		}
	}
	for i := 1; i <= 5; i++ {
		if key := fmt.Sprintf("k%d", i); written[key] != 1 {
			t.Errorf("command %s written %d times, want once", key, written[key])
		}
	}
	if len(written) != 5 {
		t.Errorf("records of the runtime's own by key: %v; want k1 to k5, once each", written)
	}
}

// TestAnOldSnapshotHoldsADamagedLinkedFact: a snapshot written before snapshots kept
// the version of the first record of the runtime's own ("own") is trusted when the fact
// linked first into the stream (where the check for an erasure since starts looking for
// that record) is damaged: the snapshot holds the fact, as the package doc says, so the
// views and Run go on from it. The check met the damage and distrusted the snapshot, so
// the process was folded from its first event without the fact.
func TestAnOldSnapshotHoldsADamagedLinkedFact(t *testing.T) {
	ctx := context.Background()
	opts := pm.Options{SnapshotEvery: 2}
	fact := func(n int) pmd.Event {
		return pmd.Event{Type: "Go", Data: map[string]any{"id": "1", "pad": pad, "mark": fmt.Sprintf("FACT-%d-FACT", n)}}
	}
	var old uuid.UUID // the id of the snapshot without "own"
	s := damagedStore(t, func(s *pmd.Store) {
		r := start(t, s, snapDef(), opts)
		for n := 1; n <= 3; n++ {
			appendFact(t, s, fact(n))
			r.idle(t)
		}
		r.stop(t)
		// The newest snapshot again, as an earlier version wrote it, with the id the
		// runtime gives it (in the namespace of the store's id).
		const stream = "Snapped.snapshots$1"
		snaps := processStream(t, s, stream)
		last := snaps[len(snaps)-1]
		if v := fmt.Sprint(last.Data["version"]); v != "5" {
			t.Fatalf("newest snapshot covers %v, want version 5", last.Data["version"])
		}
		delete(last.Data, "own")
		id := s.ID()
		ns := uuid.NewSHA1(uuid.MustParse("7b1c2f4e-5d1a-4f0e-9a57-3c0d8f6b2e91"), id[:])
		old = uuid.NewSHA1(ns, fmt.Appendf(nil, "%s@%d", stream, len(snaps)))
		rec := pmd.EventData{ID: old, Type: last.Type, Data: last.Data, Metadata: last.Metadata}
		if _, err := s.Append(ctx, stream, pmd.AtVersion(uint64(len(snaps)-1)), rec); err != nil {
			t.Fatal(err)
		}
		sealWithNoise(t, s)
	}, "FACT-1-FACT")
	m, err := pm.New(s, snapDef(), pm.Options{SnapshotEvery: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := m.ProcessPage(ctx, "1", -1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if v.Snapshot == nil || v.Snapshot.ID != old || v.State != (snapState{N: 3, Mark: "SNAP-3-SNAP"}) {
		t.Fatalf("ProcessPage: snapshot %+v, state %+v; want the old snapshot's state, the 3 facts folded", v.Snapshot, v.State)
	}
	r := start(t, s, snapDef(), opts)
	appendFact(t, s, fact(4))
	r.idle(t)
	r.stop(t)
	if v, err = m.ProcessPage(ctx, "1", -1, 100); err != nil || v.State != (snapState{N: 4, Mark: "SNAP-4-SNAP"}) {
		t.Fatalf("ProcessPage after a 4th fact: state %+v, %v; want the 4 facts folded", v.State, err)
	}
	written := map[string]int{}
	for from := uint64(0); ; {
		var damaged *pmd.CorruptError
		for e, err := range s.ReadStream(ctx, "Snapped$1", pmd.ReadOptions{From: from}) {
			if errors.As(err, &damaged) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !e.Link {
				key, _ := e.Metadata[pm.MetaKey].(string)
				written[key]++
			}
		}
		if damaged == nil {
			break
		}
		from = damaged.Version + 1
	}
	if len(written) != 4 || written["k1"] != 1 || written["k4"] != 1 {
		t.Errorf("records of the runtime's own by key: %v; want k1 to k4, once each", written)
	}
}
