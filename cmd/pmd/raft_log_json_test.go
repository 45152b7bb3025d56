package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
)

// TestServeClusterLogsJSON: with --log-format json every line a cluster node writes is
// one JSON object, Raft's own among them (a one-node cluster's start warns that its
// heartbeat timeout ran out before it elects itself), at slog's level names: Raft's
// lines were hclog's text, which a log shipper reading JSON lines cannot parse.
func TestServeClusterLogsJSON(t *testing.T) {
	d := startDaemon(t, pmdBinary(t), "--data", t.TempDir(), "--node-id", "n1", "--raft-addr", "127.0.0.1:0", "--insecure")
	d.waitLog(t, "cluster: leading")
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("pmd serve: %v\n%s", err, d.logs)
	}
	var raftLines int
	sc := bufio.NewScanner(bytes.NewReader(d.logs.Bytes()))
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a line of pmd serve --log-format json is not JSON: %v\n%s", err, sc.Bytes())
		}
		if strings.HasPrefix(rec.Msg, "raft: ") {
			raftLines++
			if rec.Level != "WARN" && rec.Level != "ERROR" {
				t.Errorf("Raft's line %q has level %q, want WARN or ERROR", rec.Msg, rec.Level)
			}
		}
	}
	if raftLines == 0 {
		t.Fatalf("no line of Raft's:\n%s", d.logs)
	}
}
