package pm_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// refusingStore opens a store as a cluster node's: a replicator applies each write at
// once, as a node applies what Raft committed, until refuse is set, after which it
// refuses every write as unavailable with the cause refuse holds, as a node that lost
// its leadership, or was removed, or whose disk is full refuses them.
func refusingStore(t *testing.T) (s *pmd.Store, refuse *atomic.Pointer[error]) {
	t.Helper()
	s = openStore(t, t.TempDir())
	refuse = new(atomic.Pointer[error])
	var mu sync.Mutex
	var applied uint64
	first, err := s.SetReplicator(func(ctx context.Context, w []byte) (pmd.WriteResult, error) {
		if cause := refuse.Load(); cause != nil {
			return pmd.WriteResult{}, &pmd.UnavailableError{Cause: *cause}
		}
		mu.Lock()
		defer mu.Unlock()
		applied++
		o := s.ApplyWrites(ctx, []pmd.ReplicatedWrite{{Index: applied, Timestamp: time.Now().UnixNano(), Write: w}})
		return o[0].Result, o[0].Err
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	applied = first
	mu.Unlock()
	return s, refuse
}

// unwritableCauses are the causes a cluster node refuses a write for at its stop or
// when it loses its leadership (as cluster words them), and a full disk's.
var unwritableCauses = []struct {
	name  string
	cause error
	disk  bool // freeing the disk is the advice
}{
	{"no leader", errors.New("cluster: no leader"), false},
	{"not the leader", errors.New("cluster: this node is not the leader (the leader is n2)"), false},
	{"removed", errors.New("cluster: this node was removed from the cluster: restart it with --join to rejoin"), false},
	{"leadership lost", errors.New("cluster: the write may not have been committed: leadership lost while committing log"), false},
	{"full disk", fmt.Errorf("log: write positions 7-7: %w", &fs.PathError{Op: "write", Path: "log/00000001.seg", Err: syscall.ENOSPC}), true},
}

// TestAStopAfterLeadershipWentGivesNoDiskAdvice: a cluster leader that stops (Ctrl-C of
// make cluster), loses its leadership or is removed has its managers and subscriptions
// stopped, and their last checkpoint (or position) write is refused as unavailable for
// that cause, not for a full disk. It is not a problem (the events after the last one
// written are read again at the next start): no WARN, and above all not one telling the
// operator to free the disk, which every routine stop of a leader logged. A write
// refused for a full disk still says to free it.
func TestAStopAfterLeadershipWentGivesNoDiskAdvice(t *testing.T) {
	for _, tc := range unwritableCauses {
		t.Run(tc.name, func(t *testing.T) {
			s, refuse := refusingStore(t)
			var logs lockedLog
			r := start(t, s, ackDef(new(atomic.Value)), pm.Options{Logger: logs.logger()})
			received := make(chan struct{}, 1)
			sub := startSub(t, s, "billing", pm.Filter{Types: []string{"Go"}}, pm.SubscriptionOptions{
				SaveEvery: time.Hour, Logger: logs.logger(),
				Deliver: func(context.Context, pmd.Event) error {
					select {
					case received <- struct{}{}:
					default:
					}
					return nil
				},
			})
			deadline := time.After(30 * time.Second)
			appendFact(t, s, goFact("1"))
			select {
			case <-received:
			case <-deadline:
				t.Fatal("the subscription delivered nothing")
			}
			// Its first position is written at once, the next one an hour later: a second
			// event delivered leaves it a position to write as it stops.
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for !hasRecord(t, s, pm.SubscriptionStream("billing"), "SubscriptionPosition") {
				select {
				case <-tick.C:
				case <-deadline:
					t.Fatal("the subscription wrote no position")
				}
			}
			appendFact(t, s, goFact("2"))
			select {
			case <-received:
			case <-deadline:
				t.Fatal("the subscription did not deliver the second event")
			}
			r.idle(t)
			sub.idle(t)
			refuse.Store(&tc.cause)
			r.stop(t)
			sub.stop(t)

			advice := logs.lines("free the disk")
			warns := logs.lines("level=WARN")
			switch {
			case tc.disk && len(advice) != 2:
				t.Errorf("log lines to free the disk:\n%s\nwant two: the manager's checkpoint and the subscription's position", strings.Join(advice, "\n"))
			case !tc.disk && (len(advice) != 0 || len(warns) != 0):
				t.Errorf("WARN lines:\n%s\nwant none: the node stopped or lost its leadership, and its disk is fine", strings.Join(warns, "\n"))
			}
		})
	}
}
