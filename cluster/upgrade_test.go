package cluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/pmd-dev/pmd"
)

// TestNodeUpgradesFromBolt runs a one-node cluster in this process, puts its Raft state
// back as the previous version kept it (raft-boltdb, raft/raft.db, written here with
// raft-boltdb), and starts the node again: it migrates at start, leads with the same
// Raft log, skips the entries its store holds, and takes writes.
func TestNodeUpgradesFromBolt(t *testing.T) {
	dir := t.TempDir()
	start := func() (*pmd.Store, *Node) {
		t.Helper()
		return startOne(t, dir, Config{})
	}
	appendN := func(s *pmd.Store, n int) {
		t.Helper()
		for i := range n {
			if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	s, n := start()
	appendN(s, 50)
	lastIndex, applied := n.raft.LastIndex(), s.Applied()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The previous version's Raft state: the same entries and values in raft.db.
	raftDir := filepath.Join(dir, "raft")
	ls, err := openLogStore(filepath.Join(raftDir, raftLogDir), false, nil)
	must(t, err)
	st, err := openStableStore(filepath.Join(raftDir, raftStableFile), false)
	must(t, err)
	bs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, boltFile)})
	must(t, err)
	first, err := ls.FirstIndex()
	must(t, err)
	last, err := ls.LastIndex()
	must(t, err)
	must(t, copyEntries(ls, bs, first, last))
	for _, k := range stableKeys {
		if v, err := st.Get(k); err == nil {
			must(t, bs.Set(k, v))
		}
	}
	must(t, bs.Close())
	must(t, ls.Close())
	must(t, os.RemoveAll(filepath.Join(raftDir, raftLogDir)))
	must(t, os.Remove(filepath.Join(raftDir, raftStableFile)))

	s, n = start()
	defer s.Close()
	defer n.Close()
	if _, err := os.Stat(filepath.Join(raftDir, boltFile)); !os.IsNotExist(err) {
		t.Fatalf("raft.db is still there: %v", err)
	}
	if got := n.raft.LastIndex(); got < lastIndex {
		t.Fatalf("Raft's last index after the upgrade is %d, before it %d", got, lastIndex)
	}
	if s.Applied() != applied {
		t.Fatalf("the store's Applied is %d after the upgrade, %d before", s.Applied(), applied)
	}
	appendN(s, 5)
	if got := s.LastPosition(); got != 55 {
		t.Fatalf("the store holds %d records after the upgrade and 5 more writes, want 55", got)
	}
	var l raft.Log
	must(t, n.logs.GetLog(first, &l))
}

// TestStartOnPortZero: a node given port 0 listens on a port the system picks, and
// advertises that one: the address in its Raft configuration answers with the node's
// cluster service.
func TestStartOnPortZero(t *testing.T) {
	s, n := startOne(t, t.TempDir(), Config{})
	defer s.Close()
	defer n.Close()
	servers := n.raft.GetConfiguration().Configuration().Servers
	if len(servers) != 1 || string(servers[0].Address) != n.mux.ln.Addr().String() || n.Self().RaftAddr != n.mux.ln.Addr().String() {
		t.Fatalf("the node listens on %s, its configuration is %v and it advertises %s", n.mux.ln.Addr(), servers, n.Self().RaftAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, _, _, err := n.call(ctx, string(servers[0].Address), request{Op: "info"}, 10*time.Second)
	if err != nil || resp.Info == nil || resp.Info.ID != "n1" {
		t.Fatalf("info from the advertised address: %+v, %v", resp, err)
	}
}
