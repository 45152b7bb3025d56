package cluster

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestStartRefusedAtItsListenLeavesNoRaftState: a Start refused at its listen (the
// Raft port held by another listener) leaves a single node's directory a single node's:
// it made raft/ before it listened, and a directory with raft/ is a member's from then on.
func TestStartRefusedAtItsListenLeavesNoRaftState(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer busy.Close()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	defer s.Close()
	n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: busy.Addr().String(), HTTPAddr: "127.0.0.1:1",
		Dir: dir, Store: s, Logger: logger})
	if err == nil {
		n.Close()
		t.Fatalf("started on %s, which another listener holds", busy.Addr())
	}
	if want := "listen on the Raft address " + busy.Addr().String(); !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want it saying %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, engine.RaftDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the single node's directory got raft/: stat: %v", err)
	}
}
