package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/config"
)

// TestLeaderSaysItsSetIsStarting: a cluster's leader whose process managers and
// subscriptions are not running yet (starting, or starting again a second after a
// failure) answers their routes 503 saying so; it said that it was not the leader, and
// a follower relayed that from the leader. A node that does not lead still says it.
func TestLeaderSaysItsSetIsStarting(t *testing.T) {
	store, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("pmd.yaml", []byte("subscriptions:\n  - name: billing\n    types: [Billed]\n    deliver: {webhook: http://127.0.0.1:9/events}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := &leaderProcesses{store: store, cfg: cfg, logger: quiet(), failed: func() { t.Error("the set did not start") }}
	subs := leaderSubscriptions{l}
	ctx := context.Background()
	if _, err := subs.List(ctx); !errors.Is(err, errNotLeading) || !errors.Is(err, pmd.ErrUnavailable) {
		t.Fatalf("List on a node that does not lead: %v; want unavailable, %v", err, errNotLeading)
	}
	// Every set started on a closed store fails at once, and the next starts a second
	// later: the leader is between two sets most of the time.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	leading, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(leading)
	}()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := subs.List(ctx)
		if errors.Is(err, errStarting) && errors.Is(err, pmd.ErrUnavailable) {
			break
		}
		select {
		case <-deadline:
			stop()
			<-done
			t.Fatalf("List on a leader between two sets: %v; want unavailable, %v", err, errStarting)
		case <-tick.C:
		}
	}
	stop()
	<-done
	if _, err := subs.List(ctx); !errors.Is(err, errNotLeading) {
		t.Fatalf("List once the node no longer leads: %v; want %v", err, errNotLeading)
	}
}
