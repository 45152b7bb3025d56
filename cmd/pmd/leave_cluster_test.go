package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestServeRefusesAClusterNodesData: pmd serve without --node-id refuses a cluster node's
// data directory (its writes would carry no Raft index, and the node would apply its
// Raft entries again when it rejoins), saying how to leave the cluster; --leave-cluster
// serves it, without its Raft state; --leave-cluster with --node-id is a usage error.
func TestServeRefusesAClusterNodesData(t *testing.T) {
	data := t.TempDir()
	raftDir := filepath.Join(data, "raft")
	if err := os.Mkdir(raftDir, 0o750); err != nil {
		t.Fatal(err)
	}
	// Bounded: a start that is not refused serves until the context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, stderr := runPMD(t, ctx, "serve", "--data", data, "--addr", "127.0.0.1:0")
	if code != exitTrouble || !strings.Contains(stderr, "belongs to a cluster node: it holds Raft state") || !strings.Contains(stderr, "--leave-cluster") {
		t.Fatalf("exit %d, want %d with the reason and --leave-cluster:\n%s", code, exitTrouble, stderr)
	}
	if _, err := os.Stat(raftDir); err != nil {
		t.Fatalf("the refused start touched the Raft state: %v", err)
	}

	code, _, stderr = runPMD(t, ctx, "serve", "--data", data, "--addr", "127.0.0.1:0", "--leave-cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(stderr, "--leave-cluster goes without --node-id") {
		t.Fatalf("exit %d, want %d saying --leave-cluster goes without --node-id:\n%s", code, exitUsage, stderr)
	}

	d := startDaemon(t, pmdBinary(t), "--data", data, "--leave-cluster")
	if _, err := os.Stat(raftDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("--leave-cluster kept the Raft state: %v", err)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd exited with %v\n%s", err, d.logs)
	}
	if !strings.Contains(d.logs.String(), "left its cluster") {
		t.Fatalf("the log does not say the directory left its cluster:\n%s", d.logs)
	}
}

// TestLeaveClusterKeepsRaftStateOfALockedDirectory: --leave-cluster on a data directory
// another process has open (a running member's) fails for the lock and leaves the Raft
// state where it is: the directory is taken out of its cluster only once pmd holds it.
func TestLeaveClusterKeepsRaftStateOfALockedDirectory(t *testing.T) {
	data := t.TempDir()
	raftDir := filepath.Join(data, "raft")
	if err := os.Mkdir(raftDir, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := pmd.Open(data, pmd.Options{NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, stderr := runPMD(t, ctx, "serve", "--data", data, "--addr", "127.0.0.1:0", "--leave-cluster")
	if code != exitTrouble || !strings.Contains(stderr, "is in use by another pmd") {
		t.Fatalf("exit %d, want %d saying the directory is in use:\n%s", code, exitTrouble, stderr)
	}
	if _, err := os.Stat(raftDir); err != nil {
		t.Fatalf("--leave-cluster on a locked directory removed the Raft state: %v", err)
	}
}
