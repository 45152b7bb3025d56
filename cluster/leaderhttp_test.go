package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLeaderHTTPAsksOnce: a follower whose forwarded requests all need the leader's HTTP
// address at once (a term change) asks the leader once, not once per request: behind a
// NAT or proxy they would come from one host and exceed its handshake slots.
func TestLeaderHTTPAsksOnce(t *testing.T) {
	n1, n2, asked := leaderAndFollowerBehindProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const callers = 32
	n2.leaderAt.Store(nil) // as at a term change
	before := asked.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			http, err := n2.LeaderHTTP(ctx, 20*time.Second)
			if err == nil && http != n1.cfg.HTTPAddr {
				t.Errorf("n2 forwards to %q, want %q", http, n1.cfg.HTTPAddr)
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if got := asked.Load() - before; got > 2 {
		t.Fatalf("%d requests needing the leader's address asked it %d times, want once", callers, got)
	}
}

// leaderAndFollowerBehindProxy starts a one-node cluster n1 that advertises its Raft
// address through a proxy counting the cluster service's connections (asked), and n2,
// which joins it there, has learned its HTTP address and caught up, so that it makes no
// more calls of its own. Both stop at the test's end.
func leaderAndFollowerBehindProxy(t *testing.T) (n1, n2 *Node, asked *atomic.Int32) {
	t.Helper()
	var target atomic.Pointer[string]
	via, asked := countingProxy(t, func() string {
		if a := target.Load(); a != nil {
			return *a
		}
		return "127.0.0.1:1"
	})
	s1, n1 := startOne(t, t.TempDir(), Config{RaftAdvertise: via})
	t.Cleanup(func() { s1.Close() })
	t.Cleanup(func() { n1.Close() })
	raftAddr := n1.cfg.RaftAddr
	target.Store(&raftAddr)
	s2, n2 := startPeer(t, "n2", "", via, Config{})
	t.Cleanup(func() { s2.Close() })
	t.Cleanup(func() { n2.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n2.LeaderHTTP(ctx, 30*time.Second); err != nil {
		t.Fatalf("n2 does not find its leader: %v", err)
	}
	must(t, n2.WaitApplied(ctx, n1.AppliedIndex()))
	return n1, n2, asked
}
