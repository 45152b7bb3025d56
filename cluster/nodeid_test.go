package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestStartRefusesALongNodeID: a node id longer than a connection's header carries is
// refused at start: the node started, dialed no other node (each dial failed), and
// served for ever with no leader, its log silent on why.
func TestStartRefusesALongNodeID(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	defer s.Close()
	n, err := Start(context.Background(), Config{NodeID: strings.Repeat("n", MaxNodeIDLen+1), RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		Dir: dir, Store: s, Logger: logger, Join: []string{"127.0.0.1:1"}})
	if err == nil {
		n.Close()
		t.Fatal("started with a node id of 256 bytes")
	}
	if want := "the node id is 256 bytes: a node id must be at most 255"; !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want it saying %q", err, want)
	}
}
