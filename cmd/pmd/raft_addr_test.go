package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestServeRaftAddressRefusals: a node whose Raft addresses cannot serve is refused
// before its data directory is opened, and a single node's directory is left one (a
// directory holding Raft state is refused as a member's from then on); a --join or
// --raft-advertise that is not HOST:PORT, or a --raft-advertise of every interface, made
// a node that waited for ever for a node it could not reach. A bad value that came from
// the environment is named by its variable.
func TestServeRaftAddressRefusals(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	node := []string{"--node-id", "n1"}
	tests := []struct {
		name string
		env  [][2]string // set in the environment
		args []string
		code int
		want string
	}{
		{"a Raft port out of range", nil, append(node, "--raft-addr", "127.0.0.1:99999"), exitUsage,
			`--raft-addr "127.0.0.1:99999": port 99999 is out of range (0 to 65535)`},
		{"a Raft address without a port", nil, append(node, "--raft-addr", "127.0.0.1"), exitUsage,
			`--raft-addr "127.0.0.1" is not HOST:PORT`},
		{"a busy Raft port", nil, append(node, "--raft-addr", busy.Addr().String()), exitTrouble,
			"listen on the Raft address " + busy.Addr().String() + " (--raft-addr)"},
		{"a join address without a port", nil, append(node, "--raft-addr", "127.0.0.1:0", "--join", "127.0.0.1:7081, node2"), exitUsage,
			`--join "node2" is not HOST:PORT`},
		{"a join address on port 0", nil, append(node, "--raft-addr", "127.0.0.1:0", "--join", "127.0.0.1:0"), exitUsage,
			`--join "127.0.0.1:0": port 0 is out of range (1 to 65535)`},
		{"an advertised address without a port", nil, append(node, "--raft-addr", "127.0.0.1:0", "--raft-advertise", "pmd1.example"), exitUsage,
			`--raft-advertise "pmd1.example" is not HOST:PORT`},
		{"an advertised address of every interface", nil, append(node, "--raft-addr", "127.0.0.1:0", "--raft-advertise", "0.0.0.0:7081"), exitUsage,
			`--raft-advertise "0.0.0.0:7081" is not the address other nodes reach this node's Raft port at: it names no host, or one of every interface`},
		{"an advertised address with no host", nil, append(node, "--raft-addr", "127.0.0.1:0", "--raft-advertise", ":7081"), exitUsage,
			`--raft-advertise ":7081" is not the address other nodes reach this node's Raft port at`},
		{"an advertised IPv6 address of every interface", nil, append(node, "--raft-addr", "127.0.0.1:0", "--raft-advertise", "[::]:7081"), exitUsage,
			`--raft-advertise "[::]:7081" is not the address other nodes reach`},
		// A bad value from the environment is named by its variable, which the command
		// line does not show.
		{"PMD_RAFT_ADDR without a port", [][2]string{{"PMD_RAFT_ADDR", "127.0.0.1"}}, node, exitUsage,
			`PMD_RAFT_ADDR "127.0.0.1" is not HOST:PORT`},
		{"PMD_RAFT_ADDR on a busy port", [][2]string{{"PMD_RAFT_ADDR", busy.Addr().String()}}, node, exitTrouble,
			"listen on the Raft address " + busy.Addr().String() + " (PMD_RAFT_ADDR)"},
		{"PMD_JOIN without a port", [][2]string{{"PMD_JOIN", "node2"}}, append(node, "--raft-addr", "127.0.0.1:0"), exitUsage,
			`PMD_JOIN "node2" is not HOST:PORT`},
		{"PMD_RAFT_ADDR without a node id", [][2]string{{"PMD_RAFT_ADDR", "127.0.0.1:7081"}}, nil, exitUsage,
			"PMD_RAFT_ADDR set in the environment: --raft-addr, --raft-advertise, --join, --bootstrap-expect and --cluster-secret-file need --node-id"},
		{"PMD_NODE_ID without a Raft address", [][2]string{{"PMD_NODE_ID", "n1"}}, nil, exitUsage,
			"PMD_NODE_ID needs --raft-addr"},
		{"PMD_NODE_ID too long", [][2]string{{"PMD_NODE_ID", strings.Repeat("n", 256)}, {"PMD_RAFT_ADDR", "127.0.0.1:0"}}, nil, exitUsage,
			"PMD_NODE_ID is 256 bytes"},
		{"PMD_CLUSTER_SECRET_FILE missing", [][2]string{{"PMD_CLUSTER_SECRET_FILE", filepath.Join(t.TempDir(), "missing")}}, append(node, "--raft-addr", "127.0.0.1:0"), exitTrouble,
			"PMD_CLUSTER_SECRET_FILE: open "},
		{"a flag over the environment", [][2]string{{"PMD_RAFT_ADDR", "127.0.0.1:0"}}, append(node, "--raft-addr", "127.0.0.1"), exitUsage,
			`--raft-addr "127.0.0.1" is not HOST:PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				t.Setenv(kv[0], kv[1])
			}
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)
			// A start that is not refused stops here, rather than serving on.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// A new directory is not made ...
			data := filepath.Join(t.TempDir(), "data")
			code, _, stderr := runPMD(t, ctx, append(args, "--data", data)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d, stderr lacks %q:\n%s", code, tt.code, tt.want, stderr)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data directory was made: stat: %v", err)
			}
			// ... and a single node's stays one.
			single := t.TempDir()
			s, err := pmd.Open(single, pmd.Options{NoSync: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if code, _, stderr := runPMD(t, ctx, append(args, "--data", single)...); code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, stderr)
			}
			if _, err := os.Stat(filepath.Join(single, engine.RaftDir)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the single node's directory got Raft state: stat: %v", err)
			}
		})
	}
}

// TestRaftTuningNeedsNodeID: the Raft tuning flags, like the other cluster flags, are
// refused without --node-id, rather than taken and ignored by a single node.
func TestRaftTuningNeedsNodeID(t *testing.T) {
	for _, args := range [][]string{
		{"--raft-heartbeat", "1ms"},
		{"--raft-snapshot-threshold", "100"},
		{"--raft-snapshot-interval", "1m"},
		{"--raft-trailing-logs", "100"},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, err := serveFlags(args, io.Discard)
			var uerr *usageError
			if !errors.As(err, &uerr) || !strings.Contains(err.Error(), "they need --node-id") {
				t.Fatalf("serve %v: got %v, want a usage error saying they need --node-id", args, err)
			}
		})
	}
}

// TestClusterSubcommands: pmd cluster names a word that is no subcommand of it, rather
// than counting it as an argument.
func TestClusterSubcommands(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"cluster"}, "want a subcommand: status, join or remove"},
		{[]string{"cluster", "stauts"}, `unknown subcommand "stauts": want status, join or remove`},
		{[]string{"cluster", "list", "n1"}, `unknown subcommand "list": want status, join or remove`},
	}
	for _, tt := range tests {
		code, _, stderr := runPMD(t, context.Background(), tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Fatalf("pmd %v: exit %d, want %d, stderr lacks %q:\n%s", tt.args, code, exitUsage, tt.want, stderr)
		}
	}
}
