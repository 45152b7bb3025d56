package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
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

// TestLeaderSaysItLeadsNoMoreWhileItsSetStops: a leader whose leadership ends says at
// once that it does not lead, while its set is still stopping: leading was cleared only
// when run returned, after the set's stop, which can take seconds (a write in flight
// waits for the cluster), and the process routes said the set was starting meanwhile.
// The set's subscription delivers an event and records it through a replicator that
// holds every write until the test lets it go, so the stop outlasts the leadership.
func TestLeaderSaysItLeadsNoMoreWhileItsSetStops(t *testing.T) {
	dir := t.TempDir()
	store, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), "Bill$1", pmd.Any, pmd.EventData{Type: "Billed"}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err = pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	if _, err := store.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		once.Do(func() { close(held) })
		<-release // a cluster that does not answer: the write waits, whatever its context says
		return pmd.WriteResult{}, &pmd.UnavailableError{Cause: errors.New("no leader")}
	}); err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer hook.Close()
	cfg, err := config.Parse("pmd.yaml", []byte("subscriptions:\n  - name: billing\n    types: [Billed]\n    deliver: {webhook: "+hook.URL+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := &leaderProcesses{store: store, cfg: cfg, logger: quiet(), failed: func() { t.Error("the set did not start") }}
	subs := leaderSubscriptions{l}
	leading, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(leading)
	}()
	defer func() {
		stop()
		close(release)
		<-done
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the subscription wrote nothing")
	}
	stop() // leadership ends while the set's write waits
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := subs.List(context.Background())
		if errors.Is(err, errNotLeading) {
			break
		}
		select {
		case <-done:
			t.Fatal("run returned while the set's write was held")
		case <-deadline:
			t.Fatalf("List on a node whose leadership ended, its set still stopping: %v; want %v", err, errNotLeading)
		case <-tick.C:
		}
	}
	select {
	case <-done:
		t.Fatal("run returned while the set's write was held")
	default:
	}
}
