package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestStopWhenWritesStop: a store that stopped writing until a restart
// (pmd.Store.WritesStopped) stops the daemon, with an error saying why, though no process
// manager or subscription runs to fail on a write: a supervisor that restarts what exits
// (systemd's Restart=on-failure) saw a daemon serving on, degraded, for good. A daemon
// stopped for another reason returns no such error. This is the watcher serveCmd starts;
// no test drives serveCmd into it, as nothing outside the store can make its index refuse
// a durable batch (TestWritesStoppedSaysSo in the root package does, for the channel).
func TestStopWhenWritesStop(t *testing.T) {
	for _, storeStops := range []bool{true, false} {
		t.Run(map[bool]string{true: "writes stopped", false: "stopped otherwise"}[storeStops], func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			writes := make(chan struct{})
			var logs bytes.Buffer
			reason := stopWhenWritesStop(ctx, writes, func() []string {
				return []string{"writes stopped until a restart: index: closed"}
			}, slog.New(slog.NewTextHandler(&logs, nil)), stop)
			if storeStops {
				close(writes)
				<-ctx.Done() // the daemon is told to stop
			} else {
				stop()
			}
			err := reason()
			if !storeStops {
				if err != nil || logs.Len() != 0 {
					t.Fatalf("a daemon stopped by a signal: %v, logged %q; want neither", err, logs.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "index: closed") {
				t.Fatalf("reason: %v, want the store's problem", err)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "shutting down") {
				t.Fatalf("logged %q, want an ERROR saying the daemon shuts down", logs.String())
			}
		})
	}
}
