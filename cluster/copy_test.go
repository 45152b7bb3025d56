package cluster

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// stallingPeer listens like a member's Raft address and answers each connection by
// mode, then holds it open without a word until the test ends: "silent" says nothing,
// "midstream" answers a records request and sends part of a record.
func stallingPeer(t *testing.T, mode string) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	conns = new(atomic.Int32)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if mode == "midstream" {
					br := bufio.NewReader(c)
					if _, _, err := readHeader(br); err != nil {
						return
					}
					if _, err := br.ReadBytes('\n'); err != nil {
						return
					}
					_, _ = c.Write([]byte("{}\n\x40partial"))
				}
				<-done
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// copier is a node that only copies records: a replica store and the cluster
// service's client, no Raft.
func copier(t *testing.T) (*pmd.Store, *Node) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	_, err = s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		t.Error("the copier was asked to write")
		return pmd.WriteResult{}, nil
	})
	must(t, err)
	m, err := listen("127.0.0.1:0", nil, logger, defaultMuxLimits())
	must(t, err)
	t.Cleanup(func() { m.Close() })
	return s, &Node{cfg: Config{NodeID: "copier"}, store: s, logger: logger, mux: m, stop: make(chan struct{}), copyStall: 200 * time.Millisecond}
}

// TestCopyRecordsGetsPastAStalledPeer: a peer that accepts the copy connection and then
// sends nothing, or stops inside the records, is given up after the stall time, and the
// records come from another member: in the same round, or in a later one when the good
// member is not known at first. A node that stops ends the rounds.
func TestCopyRecordsGetsPastAStalledPeer(t *testing.T) {
	src, n1 := startOne(t, t.TempDir(), Config{})
	defer src.Close()
	defer n1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 20 {
		_, err := src.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
		must(t, err)
	}
	good, to := n1.Self().RaftAddr, src.LastPosition()
	for _, tc := range []struct {
		name  string
		mode  string
		peers func(round int, stalled string) []string
	}{
		{"silent first", "silent", func(_ int, stalled string) []string { return []string{stalled, good} }},
		{"midstream first", "midstream", func(_ int, stalled string) []string { return []string{stalled, good} }},
		{"good one known later", "silent", func(round int, stalled string) []string {
			if round == 1 {
				return []string{stalled}
			}
			return []string{stalled, good}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stalled, conns := stallingPeer(t, tc.mode)
			dst, n := copier(t)
			round := 0
			err := n.copyRecords(ctx, to, func() []string { round++; return tc.peers(round, stalled) })
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if got := dst.LastPosition(); got != to {
				t.Fatalf("copied up to %d, want %d", got, to)
			}
			if conns.Load() == 0 {
				t.Fatal("the stalled peer was never asked")
			}
		})
	}
	t.Run("stopped", func(t *testing.T) {
		stalled, _ := stallingPeer(t, "silent")
		_, n := copier(t)
		round := 0
		err := n.copyRecords(ctx, to, func() []string {
			if round++; round == 2 {
				close(n.stop)
			}
			return []string{stalled}
		})
		if err == nil || ctx.Err() != nil {
			t.Fatalf("a stopped node's copy from a stalled peer: %v (test context: %v)", err, ctx.Err())
		}
	})
}
