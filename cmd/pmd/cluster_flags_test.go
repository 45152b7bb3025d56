package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	return writeFile(t, "cluster.secret", content)
}

// TestServeRaftPortRefusals: a cluster node's Raft port open to others without a cluster
// secret (off loopback, or beside --auth) is refused unless --insecure says so, and so is
// a secret file that cannot serve; before the data directory is touched.
func TestServeRaftPortRefusals(t *testing.T) {
	tokens := writeTokens(t, "tokens:\n  - {name: a, sha256: "+sha256Hex("secret")+", scopes: [read]}\n")
	short := writeSecret(t, "\nshort\n")
	empty := writeSecret(t, " \n\n")
	// Raw random bytes (head -c 32 /dev/urandom), with a newline byte among them.
	raw := writeSecret(t, "\xa7\x13\xfe\x91\x00\x5c\xd2\x8b\x3e\x77\xc4\x19\xe0\x6a\x2f\xb8\x51\x0a\x94\xcd\x1e\x7b\xf3\x08\x62\xa9\x35\xdb\x4c\x80\x17\xee")
	control := writeSecret(t, "9f86d081884c7d659a2feaa0c55ad015\n\tcd2e\x1b[0m9f86d081884c7d659a2feaa0\n")
	node := []string{"--node-id", "n1"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a Raft address off loopback", append(node, "--raft-addr", "0.0.0.0:0"), exitUsage,
			"refusing to serve Raft on 0.0.0.0:0 without --cluster-secret-file: it is not a loopback address"},
		{"a Raft address on every interface", append(node, "--raft-addr", ":7081"), exitUsage,
			"refusing to serve Raft on :7081 without --cluster-secret-file: it is not a loopback address"},
		{"--auth without a secret", append(node, "--raft-addr", "127.0.0.1:0", "--auth", tokens), exitUsage,
			"--auth guards the HTTP API, but anyone who reaches the Raft port could read every event"},
		{"a missing secret file", append(node, "--raft-addr", "127.0.0.1:0", "--cluster-secret-file", short+".missing"), exitTrouble,
			"--cluster-secret-file: open "},
		{"a short secret", append(node, "--raft-addr", "0.0.0.0:0", "--cluster-secret-file", short), exitUsage,
			"the secret on line 2 is 5 bytes; a secret must be at least 16"},
		{"a file of raw bytes", append(node, "--raft-addr", "0.0.0.0:0", "--cluster-secret-file", raw), exitUsage,
			"line 1 holds a byte 0xa7 that is not UTF-8 text; the file must be text, one secret a line, e.g. hex from openssl rand -hex 32"},
		{"a control character", append(node, "--raft-addr", "0.0.0.0:0", "--cluster-secret-file", control), exitUsage,
			"line 2 holds the control character U+001B; the file must be text"},
		{"an empty secret file", append(node, "--raft-addr", "0.0.0.0:0", "--cluster-secret-file", empty), exitUsage,
			"no secret in it"},
		{"a secret without --node-id", []string{"--cluster-secret-file", short}, exitUsage,
			"--cluster-secret-file need --node-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, tt.args...)
			code, _, stderr := runPMD(t, context.Background(), args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, want %d, stderr lacks %q:\n%s", code, tt.code, tt.want, stderr)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data directory was touched: stat: %v", err)
			}
		})
	}
}

// TestServeClusterSecretFlags: what serve takes for a cluster node's Raft port: the
// secrets of --cluster-secret-file (or PMD_CLUSTER_SECRET_FILE), one a line; no secret
// on loopback; --insecure for an open port, which it marks to warn of.
func TestServeClusterSecretFlags(t *testing.T) {
	tokens := writeTokens(t, "tokens:\n  - {name: a, sha256: "+sha256Hex("secret")+", scopes: [read]}\n")
	one := writeSecret(t, "9f86d081884c7d659a2feaa0c55ad015\n")
	two := writeSecret(t, "  new secret of 32 bytes, or so.  \n\nold secret of 32 bytes, or so...\n")
	tests := []struct {
		name    string
		env     string // PMD_CLUSTER_SECRET_FILE
		args    []string
		secrets string
		open    bool
	}{
		{name: "loopback without a secret", args: []string{"--raft-addr", "127.0.0.1:7081"}},
		{name: "localhost without a secret", args: []string{"--raft-addr", "localhost:7081"}},
		{name: "a secret off loopback", args: []string{"--raft-addr", "0.0.0.0:7081", "--cluster-secret-file", one},
			secrets: "9f86d081884c7d659a2feaa0c55ad015"},
		{name: "a secret with --auth", args: []string{"--raft-addr", "127.0.0.1:7081", "--auth", tokens, "--cluster-secret-file", one},
			secrets: "9f86d081884c7d659a2feaa0c55ad015"},
		{name: "a secret from the environment", env: one, args: []string{"--raft-addr", "0.0.0.0:7081"},
			secrets: "9f86d081884c7d659a2feaa0c55ad015"},
		{name: "two secrets", args: []string{"--raft-addr", "0.0.0.0:7081", "--cluster-secret-file", two},
			secrets: "new secret of 32 bytes, or so.\nold secret of 32 bytes, or so..."},
		{name: "--insecure off loopback", args: []string{"--raft-addr", "0.0.0.0:7081", "--insecure"}, open: true},
		{name: "--insecure with --auth", args: []string{"--raft-addr", "127.0.0.1:7081", "--auth", tokens, "--insecure"}, open: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PMD_CLUSTER_SECRET_FILE", tt.env)
			c, err := serveFlags(append([]string{"--node-id", "n1"}, tt.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.cluster.secrets != tt.secrets || c.cluster.open != tt.open {
				t.Fatalf("secrets %q, open %v; want %q, %v", c.cluster.secrets, c.cluster.open, tt.secrets, tt.open)
			}
		})
	}
}

// TestServeClusterShapeRefusals: a --node-id longer than the 255 bytes a Raft
// connection's header carries is refused at start, before the data directory is touched,
// rather than serve for ever with no leader and nothing in its log saying why. A
// --bootstrap-expect above the nodes --join names is not: a node that restarts with Raft
// state ignores it, and a new node with a template's flags is added to the cluster that
// exists (it warns that it can never form one, cluster.Node).
func TestServeClusterShapeRefusals(t *testing.T) {
	join3 := "127.0.0.1:7081,127.0.0.1:7082,127.0.0.1:7083"
	tests := []struct {
		name string
		args []string
		want string // "" for a start that is not refused
	}{
		{"three of three, this one listed", []string{"--node-id", "n1", "--raft-addr", "127.0.0.1:7081", "--join", join3, "--bootstrap-expect", "3"}, ""},
		{"four: three listed and this one", []string{"--node-id", "n4", "--raft-addr", "127.0.0.1:7084", "--join", join3, "--bootstrap-expect", "4"}, ""},
		{"four of three, this one listed", []string{"--node-id", "n1", "--raft-addr", "127.0.0.1:7081", "--join", join3, "--bootstrap-expect", "4"}, ""},
		{"a template's flags on a node that joins", []string{"--node-id", "n2", "--raft-addr", "127.0.0.1:7082", "--join", "127.0.0.1:7081", "--bootstrap-expect", "3"}, ""},
		{"a node id of 256 bytes", []string{"--node-id", strings.Repeat("n", 256), "--raft-addr", "127.0.0.1:7081"},
			"--node-id is 256 bytes: a node id must be at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serveFlags(tt.args, io.Discard)
			var usage *usageError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (!errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("%v, want a usage error saying %q", err, tt.want)
			}
		})
	}
}
