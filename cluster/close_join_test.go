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
func TestCloseStopsAJoin(t *testing.T) {
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
			for {
				c, err := ln.Accept()
				if err != nil {
					return
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
		Join: join, Fatal: func(err error) { t.Errorf("node stopped: %v", err) }})
	must(t, err)
	select {
	case <-accepted: // the node is asking
	case <-time.After(30 * time.Second):
		n.Close()
		t.Fatal("the node does not ask its --join nodes to add it")
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Logf("close: %v", err)
		}
	case <-time.After(3 * time.Second):
		err := <-closed
		t.Fatalf("Close returned after %v (%v): it waited for the asks of silent nodes", time.Since(start).Round(time.Millisecond), err)
	}
}
