package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// writes returns n writes of one event each to stream, encoded as the store hands them
// to its replicator (the bytes of a Raft entry's write).
func writes(t *testing.T, stream string, n int) [][]byte {
	t.Helper()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	defer s.Close()
	var out [][]byte
	errTaken := errors.New("taken")
	_, err = s.SetReplicator(func(_ context.Context, w []byte) (pmd.WriteResult, error) {
		out = append(out, w)
		return pmd.WriteResult{}, errTaken
	})
	must(t, err)
	for i := range n {
		if _, err := s.Append(context.Background(), stream, pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); !errors.Is(err, errTaken) {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	return out
}

// entry is a Raft command entry at index of kind with the msgpack of v.
func entry(t *testing.T, index uint64, kind byte, v any) *raft.Log {
	t.Helper()
	b, err := msgpack.Marshal(v)
	must(t, err)
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: append([]byte{kind}, b...)}
}

// replica is a store that applies replicated writes, and an fsm over it that knows
// apply rules up to rules and records the refusals it is told to halt for.
func replica(t *testing.T, rules uint32) (*pmd.Store, *fsm, *[]*RulesError) {
	t.Helper()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		return pmd.WriteResult{}, errors.New("a replica in a test takes no writes")
	})
	must(t, err)
	var halted []*RulesError
	f := &fsm{store: s, logger: slog.New(slog.DiscardHandler), rules: rules,
		fetch: func(context.Context, uint64) error { return errors.New("no peer in a test") },
		fatal: func(err error) { t.Errorf("fatal: %v", err) },
		halt:  func(r *RulesError) { halted = append(halted, r) }}
	return s, f, &halted
}

// streamLen is how many events stream holds in s.
func streamLen(t *testing.T, s *pmd.Store, stream string) int {
	t.Helper()
	n := 0
	for _, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return 0
		}
		must(t, err)
		n++
	}
	return n
}

// TestApplyRules: an entry is applied when the node knows the apply rules it is stamped
// with (no stamp: the rules of pmd before stamps); an entry stamped with newer rules, or
// of an unknown kind, is refused: nothing of it nor of the entries after it is applied,
// the applied index stays before it, the node is told to halt once, with both versions,
// and no snapshot can be taken that would stand for it.
func TestApplyRules(t *testing.T) {
	w := writes(t, "Order$1", 4)
	future := RulesVersion + 1
	tests := []struct {
		name    string
		logs    func(t *testing.T) []*raft.Log
		applied uint64 // the applied index after the batch
		events  int    // Order$1's events after it
		refused *RulesError
		known   uint32 // the node's rules version; 0 for RulesVersion
	}{
		{name: "unstamped (the previous release's)", applied: 2, events: 2, logs: func(t *testing.T) []*raft.Log {
			return []*raft.Log{entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0]}), entry(t, 2, entryWrite, &writeEntry{Timestamp: 2, Write: w[1]})}
		}},
		{name: "stamped with this release's rules", applied: 2, events: 2, logs: func(t *testing.T) []*raft.Log {
			return []*raft.Log{entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0], Rules: RulesVersion}), entry(t, 2, entryWrite, &writeEntry{Timestamp: 2, Write: w[1], Rules: 1})}
		}},
		{name: "stamped with newer rules", applied: 1, events: 1, refused: &RulesError{Index: 2, Rules: future, Known: RulesVersion},
			logs: func(t *testing.T) []*raft.Log {
				return []*raft.Log{
					entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0], Rules: RulesVersion}),
					entry(t, 2, entryWrite, &writeEntry{Timestamp: 2, Write: w[1], Rules: future}),
					entry(t, 3, entryWrite, &writeEntry{Timestamp: 3, Write: w[2]}),
				}
			}},
		{name: "newer rules first in the batch", applied: 0, events: 0, refused: &RulesError{Index: 1, Rules: future, Known: RulesVersion},
			logs: func(t *testing.T) []*raft.Log {
				return []*raft.Log{entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0], Rules: future})}
			}},
		{name: "a seed stamped with newer rules", applied: 1, events: 1, refused: &RulesError{Index: 2, Rules: future, Known: RulesVersion},
			logs: func(t *testing.T) []*raft.Log {
				return []*raft.Log{
					entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0]}),
					entry(t, 2, entrySeed, &seedEntry{StoreID: uuid.New(), Rules: future}),
					entry(t, 3, entryWrite, &writeEntry{Timestamp: 3, Write: w[1]}),
				}
			}},
		{name: "several writes in one entry", applied: 2, events: 3, logs: func(t *testing.T) []*raft.Log {
			return []*raft.Log{
				entry(t, 1, entryWrites, &writesEntry{Rules: batchedRules, Writes: []writeItem{{Timestamp: 1, Write: w[0]}, {Timestamp: 2, Write: w[1]}}}),
				entry(t, 2, entryWrite, &writeEntry{Timestamp: 3, Write: w[2], Rules: batchedRules}),
			}
		}},
		{name: "several writes in one entry, on a node of rules 1", known: 1, applied: 1, events: 1,
			refused: &RulesError{Index: 2, Rules: unstampedRules, Known: 1, Kind: entryWrites},
			logs: func(t *testing.T) []*raft.Log {
				return []*raft.Log{
					entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0], Rules: 1}),
					entry(t, 2, entryWrites, &writesEntry{Rules: batchedRules, Writes: []writeItem{{Timestamp: 2, Write: w[1]}, {Timestamp: 3, Write: w[2]}}}),
					entry(t, 3, entryWrite, &writeEntry{Timestamp: 4, Write: w[3], Rules: 1}),
				}
			}},
		{name: "an unknown kind", applied: 1, events: 1, refused: &RulesError{Index: 2, Rules: unstampedRules, Known: RulesVersion, Kind: 9},
			logs: func(t *testing.T) []*raft.Log {
				return []*raft.Log{
					entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0]}),
					entry(t, 2, 9, &writeEntry{Timestamp: 2, Write: w[1]}),
					entry(t, 3, entryWrite, &writeEntry{Timestamp: 3, Write: w[2]}),
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := cmp.Or(tt.known, RulesVersion)
			s, f, halted := replica(t, known)
			logs := tt.logs(t)
			out := f.ApplyBatch(logs)
			if got := f.applied.Load(); got != tt.applied {
				t.Errorf("applied index %d, want %d", got, tt.applied)
			}
			if got := streamLen(t, s, "Order$1"); got != tt.events {
				t.Errorf("Order$1 holds %d events, want %d", got, tt.events)
			}
			if tt.refused == nil {
				for i, o := range out {
					errs := []error{}
					switch o := o.(type) {
					case *outcome:
						errs = append(errs, o.err)
					case *writesOutcome:
						errs = append(errs, o.err)
						for _, w := range o.outs {
							errs = append(errs, w.err)
						}
					}
					if err := errors.Join(errs...); err != nil {
						t.Errorf("entry %d: %v", logs[i].Index, err)
					}
				}
				if len(*halted) != 0 || f.refused.Load() != nil {
					t.Fatalf("halted: %v", *halted)
				}
				if _, err := f.Snapshot(); err != nil {
					t.Fatalf("snapshot: %v", err)
				}
				return
			}
			if len(*halted) != 1 || *(*halted)[0] != *tt.refused {
				t.Fatalf("halted with %v, want once with %+v", *halted, tt.refused)
			}
			msg := (*halted)[0].Error()
			wants := []string{fmt.Sprintf("entry %d", tt.refused.Index), fmt.Sprintf("up to version %d", known), "upgrade this node"}
			if tt.refused.Kind == 0 {
				wants = append(wants, fmt.Sprintf("apply rules version %d", future))
			}
			for _, want := range wants {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal %q does not say %q", msg, want)
				}
			}
			for i, o := range out {
				if logs[i].Index < tt.refused.Index {
					continue
				}
				var r *RulesError
				if err := o.(*outcome).err; !errors.As(err, &r) {
					t.Errorf("entry %d's outcome: %v, want the refusal", logs[i].Index, err)
				}
			}
			// Raft hands on what follows until it stops: nothing more is applied.
			out = f.ApplyBatch([]*raft.Log{entry(t, 10, entryWrite, &writeEntry{Timestamp: 10, Write: w[3]})})
			if err := out[0].(*outcome).err; !errors.As(err, new(*RulesError)) {
				t.Errorf("an entry after the refusal: %v", err)
			}
			if got := streamLen(t, s, "Order$1"); got != tt.events || f.applied.Load() != tt.applied || len(*halted) != 1 {
				t.Errorf("after an entry that follows the refusal: %d events, applied %d, halted %d times", got, f.applied.Load(), len(*halted))
			}
			if _, err := f.Snapshot(); !errors.As(err, new(*RulesError)) {
				t.Errorf("a snapshot after the refusal: %v, want the refusal", err)
			}
		})
	}
}

// TestDowngradedNodeSkipsApplied: a node restarted with an older pmd (rules 2) is handed
// again the entries after its last snapshot, stamped 3, which it applied before: it
// passes over them (the store holds them) instead of refusing them, applies the next
// entry stamped 2, and refuses one stamped 3 after it; a wait for an index past the
// refusal, begun before or after it, fails at once with it.
func TestDowngradedNodeSkipsApplied(t *testing.T) {
	w := writes(t, "Order$1", 4)
	s, f3, _ := replica(t, 3)
	stamped3 := []*raft.Log{
		entry(t, 1, entryWrite, &writeEntry{Timestamp: 1, Write: w[0], Rules: 3}),
		entry(t, 2, entryWrite, &writeEntry{Timestamp: 2, Write: w[1], Rules: 3}),
	}
	f3.ApplyBatch(stamped3)
	// The same store under the older pmd: its applied index is the store's, and the entry
	// there is to be handed to the store again (resume), as Start sets them.
	var halted []*RulesError
	f2 := &fsm{store: s, logger: slog.New(slog.DiscardHandler), rules: 2,
		fetch: func(context.Context, uint64) error { return errors.New("no peer in a test") },
		fatal: func(err error) { t.Errorf("fatal: %v", err) },
		halt:  func(r *RulesError) { halted = append(halted, r) }}
	f2.applied.Store(s.Applied())
	f2.resume = s.Applied()
	if f2.applied.Load() != 2 {
		t.Fatalf("the store applied up to %d, want 2", s.Applied())
	}
	out := f2.ApplyBatch(append(stamped3, entry(t, 3, entryWrite, &writeEntry{Timestamp: 3, Write: w[2], Rules: 2})))
	for i, o := range out {
		if err := o.(*outcome).err; err != nil {
			t.Errorf("entry %d: %v", i+1, err)
		}
	}
	if len(halted) != 0 || f2.applied.Load() != 3 || streamLen(t, s, "Order$1") != 3 {
		t.Fatalf("replaying what it applied: halted %v, applied %d, %d events; want no halt, 3, 3", halted, f2.applied.Load(), streamLen(t, s, "Order$1"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- f2.waitApplied(ctx, 5) }()
	f2.ApplyBatch([]*raft.Log{entry(t, 4, entryWrite, &writeEntry{Timestamp: 4, Write: w[3], Rules: 3})})
	if len(halted) != 1 {
		t.Fatalf("an entry stamped 3 after the applied ones: halted %v, want once", halted)
	}
	// waitApplied may have begun before or after the refusal: both end with it.
	if err := <-waited; !errors.As(err, new(*RulesError)) {
		t.Fatalf("a wait for an index past the refusal: %v, want the refusal", err)
	}
	if err := f2.waitApplied(ctx, 4); !errors.As(err, new(*RulesError)) {
		t.Fatalf("a wait begun after the refusal: %v, want the refusal", err)
	}
	if err := f2.waitApplied(ctx, 3); err != nil {
		t.Fatalf("a wait for an applied index after the refusal: %v", err)
	}
}

// TestRulesVersionHasItsRules fails when RulesVersion is raised past 2: the store's
// apply (pmd.Store.ApplyWrites) knows one set of rules and takes no version, which holds
// while every version decides a write as version 1 does (version 2 adds the entryWrites
// kind only). A version that changes how a write is decided must come with the entry's
// version passed into it and the older versions' rules kept for the entries stamped with
// them (FORMAT.md, "Apply rules"); then this test checks that.
func TestRulesVersionHasItsRules(t *testing.T) {
	if RulesVersion != batchedRules {
		t.Fatalf("RulesVersion is %d: pass each entry's rules version into pmd.Store.ApplyWrites, decide version-1 and -2 entries by their rules, and test that here", RulesVersion)
	}
}

// TestEntryStampCompatible: an entry the previous release reads (it knows no stamp) is
// the bytes it wrote itself when unstamped, and decodes with the stamp ignored.
func TestEntryStampCompatible(t *testing.T) {
	type previousWrite struct {
		Timestamp int64  `msgpack:"t"`
		Write     []byte `msgpack:"w"`
	}
	old, err := msgpack.Marshal(&previousWrite{Timestamp: 7, Write: []byte("w")})
	must(t, err)
	unstamped, err := msgpack.Marshal(&writeEntry{Timestamp: 7, Write: []byte("w")})
	must(t, err)
	if string(old) != string(unstamped) {
		t.Fatalf("an unstamped entry encodes as %x, the previous release's as %x", unstamped, old)
	}
	stamped, err := msgpack.Marshal(&writeEntry{Timestamp: 7, Write: []byte("w"), Rules: RulesVersion})
	must(t, err)
	var p previousWrite
	if err := msgpack.Unmarshal(stamped, &p); err != nil || p.Timestamp != 7 || string(p.Write) != "w" {
		t.Fatalf("the previous release reads a stamped entry as %+v, %v", p, err)
	}
}

// TestLeastRules: the leader stamps the least apply rules version of itself and the
// voters; a voter never heard from counts as a pmd before stamps; non-voters do not count.
func TestLeastRules(t *testing.T) {
	voter := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	tests := []struct {
		name    string
		own     uint32
		servers []raft.Server
		known   map[raft.ServerID]uint32
		want    uint32
	}{
		{"alone", 3, []raft.Server{voter("n1")}, nil, 3},
		{"every voter newer", 2, []raft.Server{voter("n1"), voter("n2"), voter("n3")}, map[raft.ServerID]uint32{"n2": 3, "n3": 4}, 2},
		{"one voter older", 3, []raft.Server{voter("n1"), voter("n2"), voter("n3")}, map[raft.ServerID]uint32{"n2": 3, "n3": 2}, 2},
		{"a voter not heard from", 3, []raft.Server{voter("n1"), voter("n2")}, map[raft.ServerID]uint32{}, unstampedRules},
		{"a non-voter older", 3, []raft.Server{voter("n1"), {ID: "n2", Suffrage: raft.Nonvoter}}, map[raft.ServerID]uint32{"n2": 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leastRules("n1", tt.own, tt.servers, tt.known); got != tt.want {
				t.Fatalf("leastRules = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestJoinRefusedBelowLogRules: a leader that knows apply rules 3 stamped its entries 3
// alone; a node that knows only 2 asks to join: it is not added (it would replay those
// entries, halt, and leave a two-voter cluster without a quorum), the error names both
// versions and says to upgrade it, and the leader goes on taking writes stamped 3. Asked
// over the cluster service (as a follower forwards a join, and a node asks to be
// added), the refusal still matches ErrJoinRules, for the HTTP API's 409.
func TestJoinRefusedBelowLogRules(t *testing.T) {
	s1, n1 := startOne(t, t.TempDir(), Config{rules: 3})
	defer s1.Close()
	defer n1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
	must(t, err)
	s2, n2 := startPeer(t, "n2", "", n1.Self().RaftAddr, Config{rules: 2})
	defer s2.Close()
	defer n2.Close()
	// addVoter asks the node for its rules (within a second); one that does not answer
	// in time counts as version 1, refused too. Asked again, it answers on a loaded
	// machine as well.
	for range 5 {
		err = n1.addVoter(ctx, "n2", n2.Self().RaftAddr)
		if !errors.Is(err, ErrJoinRules) {
			t.Fatalf("adding a node of rules 2 to a log stamped 3: %v, want ErrJoinRules", err)
		}
		if strings.Contains(err.Error(), "up to version 2") {
			break
		}
	}
	for _, want := range []string{"node n2", "up to version 2", "stamped with version 3", "upgrade its pmd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	_, _, _, remote := n2.call(ctx, n1.Self().RaftAddr, request{Op: "join", ID: "n2", RaftAddr: n2.Self().RaftAddr}, serviceTimeout)
	if !errors.Is(remote, ErrJoinRules) || !strings.Contains(remote.Error(), "node n2's pmd applies rules up to version") ||
		!strings.Contains(remote.Error(), "stamped with version 3") {
		t.Fatalf("the refusal over the cluster service: %v, want the refusal, matching ErrJoinRules", remote)
	}
	f := n1.raft.GetConfiguration()
	must(t, f.Error())
	if got := f.Configuration().Servers; len(got) != 1 {
		t.Fatalf("after the refused join the configuration is %v", got)
	}
	if _, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
		t.Fatalf("the leader's append after the refused join: %v", err)
	}
	if got := n1.stamp.Load(); got != 3 {
		t.Fatalf("after the refused join the leader stamps %d", got)
	}
	if st := n2.Self().State; st == "halted" {
		t.Fatalf("the refused node halted: %+v", n2.Self())
	}
}

// TestOlderVoterHalts: a node that knows only apply rules 2 made a voter of a cluster
// whose log holds entries stamped 3 (by a leader whose pmd did not check, as
// TestJoinRefusedBelowLogRules's does) replays them, refuses the first and stops its
// Raft, saying so (state "halted", Problems), with nothing of it applied.
func TestOlderVoterHalts(t *testing.T) {
	s1, n1 := startOne(t, t.TempDir(), Config{rules: 3})
	defer s1.Close()
	defer n1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
	must(t, err)
	var seedAt uint64 // the first command: the seed entry
	for i := uint64(1); i <= n1.AppliedIndex(); i++ {
		var l raft.Log
		must(t, n1.logs.GetLog(i, &l))
		if l.Type != raft.LogCommand {
			continue
		}
		seedAt = cmp.Or(seedAt, i)
		var e writeEntry // a seed entry's stamp has the same key
		must(t, msgpack.Unmarshal(l.Data[1:], &e))
		if e.Rules != 3 {
			t.Fatalf("a lone leader of rules 3 stamped entry %d with %d", i, e.Rules)
		}
	}

	logger := slog.New(slog.DiscardHandler)
	dir2 := t.TempDir()
	s2, err := pmd.Open(dir2, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	defer s2.Close()
	n2, err := Start(context.Background(), Config{NodeID: "n2", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir2, Store: s2, Logger: logger,
		Join: []string{n1.Self().RaftAddr}, rules: 2, Fatal: func(err error) { t.Errorf("n2 stopped: %v", err) }})
	must(t, err)
	defer n2.Close()
	must(t, n1.raft.AddVoter("n2", raft.ServerAddress(n2.Self().RaftAddr), 0, 0).Error())
	for n2.Self().State != "halted" {
		select {
		case <-ctx.Done():
			t.Fatalf("n2 does not halt: %+v", n2.Self())
		case <-time.After(20 * time.Millisecond): // polling the node's state: nothing to wait on
		}
	}
	p := n2.Problems()
	if len(p) != 1 || !strings.Contains(p[0], "apply rules version 3") || !strings.Contains(p[0], "up to version 2") || !strings.Contains(p[0], "upgrade this node") {
		t.Fatalf("n2's problems: %q", p)
	}
	if n2.AppliedIndex() >= seedAt || s2.LastPosition() != 0 {
		t.Fatalf("n2 applied up to %d and holds %d records: it should have applied nothing from the seed (%d) on", n2.AppliedIndex(), s2.LastPosition(), seedAt)
	}
	if _, err := n2.LeaderHTTP(ctx, time.Second); !errors.As(err, new(*RulesError)) {
		t.Fatalf("n2's leader for forwarding: %v, want the refusal", err)
	}
	// A wait for an entry it will never apply fails with why, not at ctx's end.
	if err := n2.WaitApplied(ctx, n1.raft.LastIndex()); !errors.As(err, new(*RulesError)) {
		t.Fatalf("n2's wait for the leader's last index: %v, want the refusal", err)
	}
}
