package cluster

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// countingProxy forwards connections to target (asked at each connection) and counts
// the cluster service's (join, info) among them.
func countingProxy(t *testing.T, target func() string) (addr string, service *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var wg sync.WaitGroup
	// Raft's transport does not close the connections it accepted when it shuts down,
	// so a connection through the proxy can outlive both nodes: the clean-up closes
	// every one it still holds before it waits for its goroutines.
	var mu sync.Mutex
	open := make(map[net.Conn]struct{})
	hold := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if open == nil {
			return false
		}
		open[c] = struct{}{}
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		open = nil
		mu.Unlock()
		wg.Wait()
	})
	service = new(atomic.Int32)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if !hold(c) {
					return
				}
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil {
					return
				}
				if b[0] == connService || b[0] == connServiceAuth {
					service.Add(1)
				}
				u, err := net.Dial("tcp", target())
				if err != nil {
					return
				}
				defer u.Close()
				if !hold(u) {
					return
				}
				if _, err := u.Write(b[:]); err != nil {
					return
				}
				go func() { _, _ = io.Copy(c, u); c.Close() }()
				_, _ = io.Copy(u, c)
			}()
		}
	}()
	return ln.Addr().String(), service
}

// TestHaltedNodeStopsAskingToJoin: a node that halted (an entry stamped with newer apply
// rules), restarted with --join, does not ask the leader to add it for as long as it is
// halted: it asked every 500 ms for good.
func TestHaltedNodeStopsAskingToJoin(t *testing.T) {
	s1, n1 := startOne(t, t.TempDir(), Config{rules: 3})
	defer s1.Close()
	defer n1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
	must(t, err)
	via, asked := countingProxy(t, func() string { return n1.Self().RaftAddr })
	dir2 := t.TempDir()
	halted := func(n *Node) {
		t.Helper()
		for n.Self().State != "halted" {
			select {
			case <-ctx.Done():
				t.Fatalf("n2 does not halt: %+v", n.Self())
			case <-time.After(20 * time.Millisecond): // polling the node's state: nothing to wait on
			}
		}
	}
	s2, n2 := startPeer(t, "n2", dir2, via, Config{rules: 2})
	// Its joins are refused (ErrJoinRules): added as a leader of a pmd without that
	// check did.
	must(t, n1.raft.AddVoter("n2", raft.ServerAddress(n2.Self().RaftAddr), 0, 0).Error())
	halted(n2)
	addr2 := n2.Self().RaftAddr
	must(t, n2.Close())
	must(t, s2.Close())
	s2, n2 = startPeer(t, "n2", dir2, via, Config{rules: 2, RaftAddr: addr2})
	defer s2.Close()
	defer n2.Close()
	halted(n2)
	// The node's own loop (form, rejoin) is not observable from here: run it again. It
	// must return at once, without asking, rather than ask until the node stops.
	before := asked.Load()
	done := make(chan struct{})
	go func() { defer close(done); n2.rejoin([]string{via}) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		// n2.Close, deferred, ends the loop.
		t.Fatalf("a halted node keeps asking to be added: %d asks in 30 s", asked.Load()-before)
	}
	if got := asked.Load() - before; got != 0 {
		t.Errorf("a halted node asked %d times to be added", got)
	}
}
