package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// scavengeStore writes a closed store for pmd scavenge to work on, in 4 KiB segments,
// and returns its directory: 60 events of 200 bytes or more spread over Order$0, Order$1
// and Order$2, Order$1 deleted (its 20 events dead), then filler events in Filler.
func scavengeStore(t *testing.T, filler int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet(), SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pad := strings.Repeat("x", 200)
	for i := range 60 {
		if _, err := s.Append(ctx, fmt.Sprintf("Order$%d", i%3), pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStream(ctx, "Order$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range filler {
		if _, err := s.Append(ctx, "Filler", pmd.Any, pmd.EventData{Type: "F", Data: map[string]any{"pad": pad}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestScavengeCommand(t *testing.T) {
	dir := scavengeStore(t, 30)
	ctx := context.Background()

	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("pmd scavenge exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "20 events and links removed") || strings.Contains(out, " 0 bytes freed") {
		t.Fatalf("pmd scavenge printed %q, want 20 dead events removed and bytes freed", out)
	}
	if r, err := engine.Verify(ctx, dir, nil); err != nil || !r.OK() || r.Gone != 20 {
		t.Fatalf("verify after pmd scavenge: %+v, %v", r, err)
	}
	// Bad input: a bad rate, no directory, a directory with no store.
	for _, args := range [][]string{{"scavenge", dir, "--rate", "fast"}, {"scavenge"}, {"scavenge", dir + "/nope"}} {
		stdout.Reset()
		stderr.Reset()
		if code := run(ctx, args, &stdout, &stderr); code == 0 || stderr.Len() == 0 {
			t.Errorf("pmd %v exited %d with %q", args, code, stderr.String())
		}
	}
}

// pmd scavenge counts apart the dead events and links it removed, the dead events it kept
// without their data and the erased ones: a cluster node's scavenge keeps every dead
// event so, and it printed "0 events and links removed, 20 erased" where nothing was erased.
func TestScavengeCommandCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		node bool // the directory is a cluster node's (it holds Raft state)
		want string
	}{
		{"a single store", false, ": 20 events and links removed, 0 dead events kept without their data, 0 erased;"},
		{"a cluster node", true, ": 0 events and links removed, 20 dead events kept without their data, 0 erased;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := scavengeStore(t, 30)
			if tc.node {
				if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr); code != 0 {
				t.Fatalf("pmd scavenge exited %d: %s%s", code, stdout.String(), stderr.String())
			}
			if out := stdout.String(); !strings.Contains(out, tc.want) {
				t.Fatalf("pmd scavenge printed %q, want %q", out, tc.want)
			}
		})
	}
}

// pmd scavenge on a stopped cluster node's directory frees bytes but records no expiry,
// and says so: the node opens again at the Raft index it had applied.
func TestScavengeCommandOnAReplica(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var index uint64
	if _, err := s.SetReplicator(func(ctx context.Context, w []byte) (pmd.WriteResult, error) {
		index++ // one writer at a time: this test
		o := s.ApplyWrites(ctx, []pmd.ReplicatedWrite{{Index: index, Timestamp: time.Now().UnixNano(), Write: w}})
		return o[0].Result, o[0].Err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "Order$1", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("pmd scavenge exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "is a cluster node's") || strings.Contains(out, "stream(s) had events") {
		t.Fatalf("pmd scavenge of a cluster node printed %q, want that no expiry was recorded", out)
	}
	if s, err = pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if applied, err := s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		return pmd.WriteResult{}, fmt.Errorf("no writes")
	}); err != nil || applied != index {
		t.Fatalf("after pmd scavenge the node opens at Applied %d, %v; want %d", applied, err, index)
	}
}

// A daemon scavenges at each tick of its schedule, and stops when its context ends.
func TestScheduledScavenges(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	results := make(chan error)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		runScavenges(ctx, s, ticks, quiet(), func(_ pmd.ScavengeResult, err error) { results <- err })
	}()
	for range 2 {
		ticks <- time.Now()
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Scavenges; got != 2 {
		t.Fatalf("%d scavenges after 2 ticks", got)
	}
	cancel()
	<-stopped
}

// pmd serve --scavenge-every: scheduleScavenges scavenges on a real ticker until its
// context ends, and the function it returns then returns; with no interval it schedules
// nothing and its wait returns at once.
func TestScheduleScavenges(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// returns fails the test unless wait returns within a generous deadline.
	returns := func(wait func(), what string) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			wait()
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("the wait of scheduleScavenges did not return %s", what)
		}
	}
	returns(scheduleScavenges(context.Background(), s, 0, quiet()), "with no schedule")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := scheduleScavenges(ctx, s, 5*time.Millisecond, quiet())
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	timeout := time.After(time.Minute)
	for s.Stats().Scavenges < 1 {
		select {
		case <-poll.C:
		case <-timeout:
			t.Fatal("no scheduled scavenge within a minute of a 5ms schedule")
		}
	}
	cancel()
	returns(wait, "once its context was cancelled")
}

// A scavenge of a store that has erased data removes the quarantines in DIR, which may
// hold the erased bytes: pmd scavenge names each, the scheduled scavenge's log line too,
// and pmd scavenge --help says so; a scavenge that removed none mentions none.
func TestScavengeNamesTheQuarantinesItRemoves(t *testing.T) {
	ctx := context.Background()
	erasedStore := func(t *testing.T) (string, string) {
		t.Helper()
		dir := t.TempDir()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "Customer$7", pmd.Any, pmd.EventData{Type: "AddressGiven", Data: map[string]any{"street": "Secret Lane"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.EraseStream(ctx, "Customer$7"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		q := filepath.Join(dir, "quarantine-20261129T120000Z.bin")
		if err := os.WriteFile(q, []byte("Secret Lane"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir, q
	}

	t.Run("pmd scavenge", func(t *testing.T) {
		dir, q := erasedStore(t)
		var stdout, stderr bytes.Buffer
		if code := run(ctx, []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr); code != 0 {
			t.Fatalf("pmd scavenge exited %d: %s%s", code, stdout.String(), stderr.String())
		}
		if out := stdout.String(); !strings.Contains(out, "removed the quarantine "+q) {
			t.Fatalf("pmd scavenge printed %q, want the quarantine %s it removed named", out, q)
		}
		stdout.Reset()
		if code := run(ctx, []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr); code != 0 {
			t.Fatalf("pmd scavenge exited %d: %s%s", code, stdout.String(), stderr.String())
		}
		if out := stdout.String(); strings.Contains(out, "quarantine") {
			t.Fatalf("a scavenge that removed no quarantine printed %q", out)
		}
	})

	t.Run("scheduled", func(t *testing.T) {
		dir, q := erasedStore(t)
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var logged bytes.Buffer
		runCtx, cancel := context.WithCancel(ctx)
		ticks := make(chan time.Time)
		results := make(chan error)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			runScavenges(runCtx, s, ticks, slog.New(slog.NewTextHandler(&logged, nil)), func(_ pmd.ScavengeResult, err error) { results <- err })
		}()
		ticks <- time.Now()
		err = <-results
		cancel()
		<-stopped
		if err != nil {
			t.Fatal(err)
		}
		if line := logged.String(); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "quarantines_removed="+q) {
			t.Fatalf("the scheduled scavenge logged %q, want a warning naming the quarantine %s it removed", line, q)
		}
	})

	t.Run("help", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(ctx, []string{"scavenge", "--help"}, &stdout, &stderr); code != 0 {
			t.Fatalf("pmd scavenge --help exited %d: %s", code, stderr.String())
		}
		if out := stdout.String(); !strings.Contains(out, "removes the quarantines") || !strings.Contains(out, "copy a quarantine out") {
			t.Fatalf("pmd scavenge --help says %q, nothing of the quarantines it removes", out)
		}
	})
}
