package cluster

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestCloseStopsAJoin: a node asking silent --join nodes to add it (a firewall that drops
// the packets, a peer that accepts and says nothing) stops at once when it is closed
// (pmd serve's SIGTERM): its asks ran to their timeout, 5 s each, one after the other.
// With --bootstrap-expect it asks them for their info too, once their join asks fail
// (here they close the connection at once), and stops those asks as well.
func TestCloseStopsAJoin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expect    int           // BootstrapExpect
		dropJoins bool          // the silent nodes close the first connection (the join ask) at once
		within    time.Duration // Close returns within: well under the 5 s an ask waits, with room for a loaded machine
	}{
		{name: "join", within: 3 * time.Second},
		{name: "bootstrap-expect info", expect: 4, dropJoins: true, within: 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := make(chan struct{}, 16)
			var join []string
			for range 3 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				must(t, err)
				var wg sync.WaitGroup
				var mu sync.Mutex
				var held []net.Conn
				t.Cleanup(func() {
					ln.Close()
					wg.Wait()
					mu.Lock()
					for _, c := range held {
						c.Close()
					}
					mu.Unlock()
				})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						if i == 0 && tc.dropJoins {
							c.Close() // the join ask fails at once
							continue
						}
						mu.Lock()
						held = append(held, c) // read nothing, answer nothing
						mu.Unlock()
						select {
						case accepted <- struct{}{}:
						default:
						}
					}
				}()
				join = append(join, ln.Addr().String())
			}
			dir := t.TempDir()
			logger := slog.New(slog.DiscardHandler)
			s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
			must(t, err)
			defer s.Close()
			n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger,
				Join: join, BootstrapExpect: tc.expect, Fatal: func(err error) { t.Errorf("node stopped: %v", err) }})
			must(t, err)
			select {
			case <-accepted: // the node is asking
			case <-time.After(30 * time.Second):
				n.Close()
				t.Fatal("the node does not ask its --join nodes")
			}
			closed := make(chan error, 1)
			start := time.Now()
			go func() { closed <- n.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Logf("close: %v", err)
				}
			case <-time.After(tc.within):
				err := <-closed
				t.Fatalf("Close returned after %v (%v): it waited for the asks of silent nodes", time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}
