package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// aheadReplica is a replica (as replica makes) of a store to which a single node wrote n
// events, one a write, and how often its fsm asked a peer for records.
func aheadReplica(t *testing.T, n int) (*pmd.Store, *fsm, *int) {
	t.Helper()
	dir := t.TempDir()
	for range n {
		appendSingle(t, dir)
	}
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		return pmd.WriteResult{}, errors.New("a replica in a test takes no writes")
	})
	must(t, err)
	fetches := 0
	f := &fsm{store: s, logger: slog.New(slog.DiscardHandler), rules: RulesVersion,
		fetch: func(context.Context, uint64) error { fetches++; return errors.New("no peer in a test") },
		fatal: func(err error) { t.Errorf("fatal: %v", err) },
		halt:  func(*RulesError) {}}
	return s, f, &fetches
}

// TestSeedRefusesAStoreAheadOfTheCluster: a node whose store has the cluster's id but more
// records than the cluster's store held when it was seeded (a copy of the single node's
// directory written to after the seed node's copy was taken) must not take the seed: its
// records past the seed's position are no cluster write, and every later entry would land
// at other positions than on the other nodes. A store at the seed's position takes it,
// and one behind it asks a peer for the rest.
func TestSeedRefusesAStoreAheadOfTheCluster(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pos     uint64
		want    string
		fetches int
	}{
		{"ahead", 5, "ahead of the cluster's store", 0},
		{"at the seed", 8, "", 0},
		{"behind", 9, "no peer in a test", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, f, fetches := aheadReplica(t, 8)
			if s.LastPosition() != 8 {
				t.Fatalf("the store ends at %d, want 8", s.LastPosition())
			}
			err := f.seed(seedEntry{StoreID: s.ID(), Position: tt.pos})
			if tt.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if *fetches != tt.fetches || s.LastPosition() != 8 {
				t.Fatalf("%d copies asked for, the store ends at %d; want %d and 8", *fetches, s.LastPosition(), tt.fetches)
			}
		})
	}
}
