package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestClusterSecretFileReadableByOthersWarns: the cluster secret is what keeps a local
// user without a token from reading every event through the Raft port, so a secret file
// other users may read is named at start (a warning, not a refusal: secrets mounted by
// Docker or Kubernetes are 0644 or 0444 by default, in a namespace of their own).
func TestClusterSecretFileReadableByOthersWarns(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o644, true},
		{0o444, true},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cluster.secret")
			if err := os.WriteFile(file, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tt.mode); err != nil {
				t.Fatal(err)
			}
			c := clusterFlags{nodeID: "n1", raftAddr: "127.0.0.1:7071", secretFile: file}
			if err := c.check("", false, func(name, _ string) string { return "--" + name }); err != nil {
				t.Fatalf("check: %v", err)
			}
			if c.secrets == "" {
				t.Fatal("the secret was not read")
			}
			if got := c.secretWarning != ""; got != tt.warn {
				t.Fatalf("warning %q for a file of mode %v, want one: %v", c.secretWarning, tt.mode, tt.warn)
			}
			if tt.warn && !strings.Contains(c.secretWarning, file) || tt.warn && !strings.Contains(c.secretWarning, "chmod 600") {
				t.Fatalf("warning %q, want it to name the file and the fix", c.secretWarning)
			}
		})
	}
}
