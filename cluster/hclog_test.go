package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// TestRaftLogsThroughTheNodeLogger: Raft's own lines (a one-node cluster's first start
// warns that its heartbeat timeout ran out before it elects itself) are written with the
// node's logger, so that under a JSON logger (pmd serve --log-format json) every line is
// one JSON object, Raft's with slog's level names. They went to stderr in hclog's text.
func TestRaftLogsThroughTheNodeLogger(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger,
		Fatal: func(err error) { t.Errorf("node stopped: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !n.IsLeader() {
		select {
		case <-ctx.Done():
			n.Close()
			t.Fatal("the node does not lead its one-node cluster within 30s")
		case <-time.After(10 * time.Millisecond):
		}
	}
	must(t, n.Close())
	buf.mu.Lock()
	defer buf.mu.Unlock()
	var raftLines int
	sc := bufio.NewScanner(&buf.b)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %v\n%s", err, sc.Bytes())
		}
		if strings.HasPrefix(rec.Msg, "raft: ") {
			raftLines++
			if rec.Level != "WARN" && rec.Level != "ERROR" {
				t.Errorf("Raft's line %q has level %q, want WARN or ERROR", rec.Msg, rec.Level)
			}
		}
	}
	if raftLines == 0 {
		t.Fatal("none of Raft's lines was written with the node's logger")
	}
}

// TestRaftLogger: the hclog.Logger Raft logs through writes Raft's warnings and errors
// (lower levels once asked for) at the slog level of theirs, with Raft's name before the
// message, its arguments and those of With, and hclog.Fmt's values formatted.
func TestRaftLogger(t *testing.T) {
	tests := []struct {
		name  string
		least hclog.Level // SetLevel, if not 0
		log   func(hclog.Logger)
		want  string // the JSON line's level, msg and arguments, "" for none
	}{
		{"a warning", 0, func(l hclog.Logger) { l.Warn("heartbeat timeout reached", "last-leader-id", "n2") },
			`{"level":"WARN","msg":"raft: heartbeat timeout reached","last-leader-id":"n2"}`},
		{"an error", 0, func(l hclog.Logger) { l.Error("failed to appendEntries", "error", errString("EOF")) },
			`{"level":"ERROR","msg":"raft: failed to appendEntries","error":"EOF"}`},
		{"an info line is left out", 0, func(l hclog.Logger) { l.Info("entering follower state") }, ""},
		{"a debug line is left out", 0, func(l hclog.Logger) { l.Debug("votes") }, ""},
		{"Log at Warn", 0, func(l hclog.Logger) { l.Log(hclog.Warn, "w") }, `{"level":"WARN","msg":"raft: w"}`},
		{"Info once asked for", hclog.Info, func(l hclog.Logger) { l.Info("i") }, `{"level":"INFO","msg":"raft: i"}`},
		{"Debug once asked for", hclog.Trace, func(l hclog.Logger) { l.Debug("d") }, `{"level":"DEBUG","msg":"raft: d"}`},
		{"Trace once asked for", hclog.Trace, func(l hclog.Logger) { l.Trace("t") }, `{"level":"DEBUG-4","msg":"raft: t"}`},
		{"Off", hclog.Off, func(l hclog.Logger) { l.Error("e") }, ""},
		{"a formatted value", 0, func(l hclog.Logger) { l.Warn("config", "servers", hclog.Fmt("%d / %d", 1, 3)) },
			`{"level":"WARN","msg":"raft: config","servers":"1 / 3"}`},
		{"a duration, as hclog writes it", 0, func(l hclog.Logger) { l.Warn("slow", "took", 1200*time.Millisecond) },
			`{"level":"WARN","msg":"raft: slow","took":"1.2s"}`},
		{"a Stringer, as hclog writes it", 0, func(l hclog.Logger) {
			l.Warn("added", "server", raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "addr"})
		}, `{"level":"WARN","msg":"raft: added","server":"{Voter n2 addr}"}`},
		{"a wrapped error, by its message", 0, func(l hclog.Logger) {
			l.Error("failed", "error", fmt.Errorf("dial: %w", errString("refused")))
		}, `{"level":"ERROR","msg":"raft: failed","error":"dial: refused"}`},
		{"numbers, booleans and nil stay as they are", 0, func(l hclog.Logger) {
			l.Warn("v", "n", uint64(7), "f", 0.5, "ok", true, "none", nil)
		}, `{"level":"WARN","msg":"raft: v","n":7,"f":0.5,"ok":true,"none":null}`},
		{"With", 0, func(l hclog.Logger) { l.With("id", "s1", "n", hclog.Fmt("%02d", 7)).Warn("snapshot", "x", 1) },
			`{"level":"WARN","msg":"raft: snapshot","id":"s1","n":"07","x":1}`},
		{"Named", 0, func(l hclog.Logger) { l.Named("net").Warn("w") }, `{"level":"WARN","msg":"raft.net: w"}`},
		{"ResetNamed", 0, func(l hclog.Logger) { l.Named("net").ResetNamed("snap").Warn("w") }, `{"level":"WARN","msg":"snap: w"}`},
		{"a standard logger", 0, func(l hclog.Logger) {
			l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("std")
		}, `{"level":"ERROR","msg":"raft: std"}`},
		{"a standard logger's Info is left out", 0, func(l hclog.Logger) { l.StandardLogger(nil).Print("std") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newRaftLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug - 4,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})))
			if tt.least != 0 {
				l.SetLevel(tt.least)
			}
			tt.log(l)
			if got := strings.TrimSuffix(buf.String(), "\n"); got != tt.want {
				t.Fatalf("wrote %q, want %q", got, tt.want)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// syncBuffer is a bytes.Buffer that Raft's goroutines and the node's may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
