package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// restartOn starts node id again with Raft state of dir and the store s (which the
// test made behind the node's snapshot), at addr: it returns what Start does.
func restartOn(t *testing.T, id, dir, addr, join string, s *pmd.Store, cfg Config) (*Node, error) {
	t.Helper()
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.Dir, cfg.Store = id, addr, "127.0.0.1:1", dir, s
	cfg.Logger = slog.New(slog.DiscardHandler)
	if join != "" {
		cfg.Join = []string{join}
	}
	cfg.Fatal = func(err error) { t.Errorf("%s stopped: %v", id, err) }
	return Start(context.Background(), cfg)
}

// behindStore opens a store in a new directory that holds the records 1..k of src, with
// src's id if k > 0: what a node's store holds when it was stopped after copying k
// records of a catch-up, or when it lost the records after k (NoSync).
func behindStore(t *testing.T, ctx context.Context, src *pmd.Store, k uint64) *pmd.Store {
	t.Helper()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	if k == 0 {
		return s
	}
	_, err = s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		t.Error("the store was asked to write")
		return pmd.WriteResult{}, nil
	})
	must(t, err)
	must(t, s.AdoptID(src.ID()))
	var recs []pmdlog.Record
	must(t, src.ScanRecords(ctx, 1, k, func(r *pmdlog.Record) error { recs = append(recs, *r); return nil }))
	must(t, s.CopyRecords(ctx, recs))
	return s
}

// TestResumeCopiesRecordsBehindOwnSnapshot: a node whose store is behind its own latest
// Raft snapshot at start (stopped partway through copying a catch-up's records, which
// Raft saved the snapshot of before, or a NoSync node that lost records) copies the
// records it lacks from a member the snapshot names before Raft restores it, and goes on
// in the cluster. It refused to start, asking for an empty data directory.
func TestResumeCopiesRecordsBehindOwnSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		has  uint64 // the records the store holds at the restart
	}{
		{"no record copied", 0},
		{"some records copied", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// n1 must stay the leader while n2 is away: timeouts three times the
			// default keep an election out under load.
			slow := Config{HeartbeatTimeout: 3 * time.Second, ElectionTimeout: 3 * time.Second}
			s1, n1 := startOne(t, t.TempDir(), slow)
			defer s1.Close()
			defer n1.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dir2 := t.TempDir()
			s2, n2 := startPeer(t, "n2", dir2, n1.Self().RaftAddr, slow)
			s3, n3 := startPeer(t, "n3", "", n1.Self().RaftAddr, slow)
			defer s3.Close()
			defer n3.Close()
			for range 20 {
				_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
				must(t, err)
			}
			if err := untilIdle(ctx, n1, 3); err != nil {
				t.Fatal(err)
			}
			must(t, n2.raft.Snapshot().Error())
			addr2 := n2.Self().RaftAddr
			must(t, n2.Close())
			must(t, s2.Close())

			// n2 comes back on its Raft state with a store behind its snapshot.
			behind := behindStore(t, ctx, s1, tc.has)
			n2, err := restartOn(t, "n2", dir2, addr2, n1.Self().RaftAddr, behind, slow)
			if err != nil {
				t.Fatalf("n2 with its store behind its own snapshot: %v", err)
			}
			defer n2.Close()
			if got, want := behind.LastPosition(), s1.LastPosition(); got != want {
				t.Fatalf("at start n2 holds %d records, want %d", got, want)
			}
			if behind.ID() != s1.ID() {
				t.Fatalf("n2's store id is %s, the cluster's %s", behind.ID(), s1.ID())
			}
			_, err = s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
			must(t, err)
			if err := untilIdle(ctx, n1, 3); err != nil {
				t.Fatalf("n2 after its restart: %v", err)
			}
			if got, want := behind.LastPosition(), s1.LastPosition(); got != want {
				t.Fatalf("n2 holds %d records, n1 %d", got, want)
			}
		})
	}
}

// TestResumeRefusesWhatNoMemberHas: a node whose store is behind its own snapshot still
// refuses to start, saying what to do, when the snapshot names no other member (a
// single node that lost records: nobody has them), and when the store holds another
// store's records. Nothing is copied and the store keeps its id.
func TestResumeRefusesWhatNoMemberHas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Run("no other member", func(t *testing.T) {
		dir := t.TempDir()
		s1, n1 := startOne(t, dir, Config{})
		for range 5 {
			_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
			must(t, err)
		}
		must(t, n1.raft.Snapshot().Error())
		must(t, n1.Close())
		must(t, s1.Close())
		behind := behindStore(t, ctx, s1, 0)
		id := behind.ID()
		n, err := restartOn(t, "n1", dir, "127.0.0.1:0", "", behind, Config{})
		if err == nil {
			n.Close()
			t.Fatal("a single node behind its own snapshot started")
		}
		if !strings.Contains(err.Error(), "behind this node's own snapshot (position 0 of ") || !strings.Contains(err.Error(), "a one-node cluster") || !strings.Contains(err.Error(), "restore its data directory from a backup") {
			t.Fatalf("the error does not say what is wrong and what to do: %v", err)
		}
		if behind.LastPosition() != 0 || behind.ID() != id {
			t.Fatalf("the refused store changed: %d records, id %s (was %s)", behind.LastPosition(), behind.ID(), id)
		}
	})
	t.Run("another store's records", func(t *testing.T) {
		slow := Config{HeartbeatTimeout: 3 * time.Second, ElectionTimeout: 3 * time.Second}
		s1, n1, dir2, addr2 := snapshottedPeer(t, ctx, slow)
		defer s1.Close()
		defer n1.Close()
		other := behindStore(t, ctx, s1, 0)
		_, err := other.Append(ctx, "Other$1", pmd.Any, pmd.EventData{Type: "T"})
		must(t, err)
		id := other.ID()
		n, err := restartOn(t, "n2", dir2, addr2, n1.Self().RaftAddr, other, slow)
		if err == nil {
			n.Close()
			t.Fatal("a node holding another store's records started")
		}
		if !strings.Contains(err.Error(), "not the cluster's store "+s1.ID().String()) {
			t.Fatalf("the error does not say what is wrong: %v", err)
		}
		if other.LastPosition() != 1 || other.ID() != id {
			t.Fatalf("the refused store changed: %d records, id %s (was %s)", other.LastPosition(), other.ID(), id)
		}
	})
}

// TestResumeGivesUpWhenNoMemberAnswers: a node behind its own snapshot whose members are
// all down refuses to start after a bounded wait, saying what to do, instead of waiting
// for good: members that all came back behind their snapshots serve nobody until they
// have started, so they would wait on each other forever.
func TestResumeGivesUpWhenNoMemberAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slow := Config{HeartbeatTimeout: 3 * time.Second, ElectionTimeout: 3 * time.Second}
	s1, n1, dir2, addr2 := snapshottedPeer(t, ctx, slow)
	must(t, n1.Close())
	must(t, s1.Close())

	behind := behindStore(t, ctx, s1, 0)
	cfg := slow
	cfg.resumeWait = time.Second
	n, err := restartOn(t, "n2", dir2, addr2, "", behind, cfg)
	if err == nil {
		n.Close()
		t.Fatal("a node behind its own snapshot started with no member up")
	}
	if !strings.Contains(err.Error(), "no member gave the missing records within 1s") || !strings.Contains(err.Error(), "start the node again once a member that has them is up") {
		t.Fatalf("the error does not say what is wrong and what to do: %v", err)
	}
}

// snapshottedPeer starts a cluster of n1 and n2 (of Raft directory dir2, at addr2), writes
// 5 events, has n2 take a snapshot and closes n2: a node to restart on its Raft state.
func snapshottedPeer(t *testing.T, ctx context.Context, cfg Config) (s1 *pmd.Store, n1 *Node, dir2, addr2 string) {
	t.Helper()
	s1, n1 = startOne(t, t.TempDir(), cfg)
	dir2 = t.TempDir()
	s2, n2 := startPeer(t, "n2", dir2, n1.Self().RaftAddr, cfg)
	for range 5 {
		_, err := s1.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "T"})
		must(t, err)
	}
	if err := untilIdle(ctx, n1, 2); err != nil {
		t.Fatal(err)
	}
	must(t, n2.raft.Snapshot().Error())
	addr2 = n2.Self().RaftAddr
	must(t, n2.Close())
	must(t, s2.Close())
	return s1, n1, dir2, addr2
}

// A shutdown asked for while a node copies the records behind its own snapshot ends the
// start then, not after the copy's two-minute bound: the first SIGTERM of `pmd serve`
// cancels Start's context. The member it asks accepts the connection and says nothing
// (a hung host): the handshake is called off too, not waited out.
func TestResumeStopsWhenStartIsCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slow := Config{HeartbeatTimeout: 3 * time.Second, ElectionTimeout: 3 * time.Second, Secrets: [][]byte{secretA}}
	s1, n1, dir2, addr2 := snapshottedPeer(t, ctx, slow)
	addr1 := n1.Self().RaftAddr
	must(t, n1.Close())
	must(t, s1.Close())

	// The member at addr1 accepts every connection and says nothing. Once the node has
	// begun copying, the next connection it makes is the copy's: the shutdown comes then,
	// while the node waits for that member's handshake.
	silent, err := net.Listen("tcp", addr1)
	must(t, err)
	defer silent.Close()
	var copying atomic.Bool
	start, stop := context.WithCancel(ctx)
	stopped := make(chan time.Time, 1)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			if copying.Load() && len(stopped) == 0 {
				stopped <- time.Now()
				stop()
			}
		}
	}()

	behind := behindStore(t, ctx, s1, 0)
	cfg := slow
	cfg.NodeID, cfg.RaftAddr, cfg.HTTPAddr, cfg.Dir, cfg.Store = "n2", addr2, "127.0.0.1:1", dir2, behind
	cfg.Fatal = func(err error) { t.Errorf("n2 stopped: %v", err) }
	cfg.Logger = slog.New(onMessage{slog.DiscardHandler, "cluster: copying records from a peer", func() { copying.Store(true) }})
	n, err := Start(start, cfg)
	if err == nil {
		n.Close()
		t.Fatal("a node behind its own snapshot started with no member up")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped while copying the records behind this node's own snapshot") {
		t.Fatalf("the error does not say the start was stopped: %v", err)
	}
	select {
	case at := <-stopped:
		// serviceTimeout (5 s) is how long the handshake would wait without the shutdown.
		if took := time.Since(at); took >= serviceTimeout {
			t.Fatalf("Start returned %v after the shutdown: the hung member's handshake was waited out", took)
		}
	default:
		t.Fatal("Start returned before the copy dialled the member")
	}
}

// onMessage is a slog handler that calls do when a record of message msg is logged.
type onMessage struct {
	slog.Handler
	msg string
	do  func()
}

func (onMessage) Enabled(context.Context, slog.Level) bool { return true }

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.do()
	}
	return h.Handler.Handle(ctx, r)
}
