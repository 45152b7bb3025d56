package pmd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/pmd-dev/pmd/internal/powercut"
)

// The scavenge crash test kills a child process (this test binary, re-executed) with
// SIGKILL while it scavenges, at a random point of a random segment, and checks after
// every kill that the store reads exactly as before the first scavenge and verifies.

const scavengeChildEnv = "PMD_SCAVENGE_CHILD_DIR"

var scavengeOptions = pmd.Options{Logger: quietLogger(), SegmentSize: 8 << 10, NoScrub: true}

func TestScavengeChild(t *testing.T) {
	dir := os.Getenv(scavengeChildEnv)
	if dir == "" {
		t.Skip("run by TestScavengeKill9 as its child process")
	}
	s, err := pmd.Open(dir, scavengeOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	// Slow enough that a kill lands inside a segment's rewrite as often as between two.
	_, err = s.Scavenge(context.Background(), pmd.ScavengeOptions{
		BytesPerSecond: 256 << 10,
		Progress:       func(done, total int64) { fmt.Printf("segment done %d/%d\n", done, total) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scavenge:", err)
		os.Exit(3)
	}
	fmt.Println("scavenge finished")
	os.Exit(0)
}

func TestScavengeKill9(t *testing.T) {
	if os.Getenv(scavengeChildEnv) != "" {
		t.Skip("child")
	}
	kills := 5
	if n, err := strconv.Atoi(os.Getenv("PMD_SCAVENGE_KILLS")); err == nil && n > 0 {
		kills = n // make soak-scavenge
	}
	dir := t.TempDir()
	before := fillForScavenge(t, dir)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	check := func(when string) { checkScavenged(t, dir, before, when) }
	finished := 0
	for k := range kills {
		// Kill after a random number of finished segments, at a random point of the
		// next one (a segment takes about 30 ms at the child's rate).
		if killScavenge(t, dir, rng.IntN(8), time.Duration(rng.IntN(40))*time.Millisecond) {
			finished++
		}
		check(fmt.Sprintf("after kill %d", k+1))
	}
	// A scavenge left to finish leaves the same reads, and a second has nothing to do.
	s, err := pmd.Open(dir, scavengeOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scavenge(context.Background(), pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Scavenge(context.Background(), pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || res.Rewritten != 0 {
		t.Fatalf("a scavenge after a finished one: %+v, %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after a whole scavenge")
	t.Logf("%d kills, %d of them after the child finished", kills, finished)
}

// checkScavenged checks that the store in dir reads as before did, and verifies.
func checkScavenged(t *testing.T, dir string, before map[string][]pmd.Event, when string) {
	t.Helper()
	s, err := pmd.Open(dir, scavengeOptions)
	if err != nil {
		t.Fatalf("%s: open: %v", when, err)
	}
	closed := false
	defer func() { // closed on a failed snapshot too: the store may be on a FUSE disk
		if !closed {
			s.Close()
		}
	}()
	after := snapshot(t, s)
	closed = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("%s: the store reads differently than before the scavenge", when)
	}
	report, err := engine.Verify(context.Background(), dir, nil)
	if err != nil || !report.OK() {
		t.Fatalf("%s: verify: %v %v", when, err, report.Problems)
	}
}

// TestScavengePowerCut is TestScavengeKill9 with a power cut after each kill: the store
// is on a FUSE disk (internal/powercut) that then loses every byte the scavenge had not
// synced, which a kill alone never loses. A segment's rewrite must be durable before it
// replaces the segment.
func TestScavengePowerCut(t *testing.T) {
	if os.Getenv(scavengeChildEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	disk, err := powercut.Mount(t.TempDir(), dir)
	if err != nil {
		t.Skipf("no power cuts here: %v", err)
	}
	t.Cleanup(func() {
		if err := disk.Unmount(); err != nil {
			t.Error(err)
		}
	})
	before := fillForScavenge(t, dir)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 11))
	for k := range 5 {
		killScavenge(t, dir, rng.IntN(8), time.Duration(rng.IntN(40))*time.Millisecond)
		if err := disk.Cut(); err != nil {
			t.Fatal(err)
		}
		checkScavenged(t, dir, before, fmt.Sprintf("after power cut %d", k+1))
	}
}

// killScavenge runs the scavenging child on dir and kills it, after a delay of after, once it has
// reported segments finished segments; it reports whether the child finished first.
func killScavenge(t *testing.T, dir string, segments int, after time.Duration) bool {
	t.Helper()
	cmd, sc, stderr := startChild(t, "TestScavengeChild", scavengeChildEnv+"="+dir)
	done, finished := 0, false
	for done < segments && sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "segment done"):
			done++
		case line == "scavenge finished":
			finished = true
		}
		if finished {
			break
		}
	}
	// Not synchronisation: where the kill lands is what is being varied.
	kill := time.AfterFunc(after, func() { cmd.Process.Kill() })
	defer kill.Stop()
	for !finished && sc.Scan() {
		finished = sc.Text() == "scavenge finished"
	}
	for sc.Scan() {
	}
	if err := cmd.Wait(); err != nil && stderr.Len() > 0 && !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child failed: %v: %s", err, stderr.String())
	}
	return finished
}

// fillForScavenge makes a store in dir with sealed segments of live, dead and erased
// events, and returns how it reads.
func fillForScavenge(t *testing.T, dir string) map[string][]pmd.Event {
	t.Helper()
	s, err := pmd.Open(dir, scavengeOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	ctx := context.Background()
	for i := range 400 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%10), pmd.Any, ev("Placed", "pad", strings.Repeat("x", 150), "i", i))
		mustAppend(t, s, fmt.Sprintf("Customer$%d", i%5), pmd.Any, ev("Said", "i", i))
		if i%9 == 0 {
			mustLink(t, s, "Process$1", pmd.Any, mustLastID(t, s, fmt.Sprintf("Order$%d", i%10)))
		}
	}
	for _, name := range []string{"Order$1", "Order$2", "Order$3", "Order$9"} {
		if err := s.DeleteStream(ctx, name, pmd.Any); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRetention(ctx, "Order$4", pmd.Retention{MaxCount: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "Customer$2"); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", strings.Repeat("f", 200), "i", i))
	}
	return snapshot(t, s)
}

func mustLastID(t *testing.T, s *pmd.Store, stream string) [16]byte {
	t.Helper()
	events, err := readStream(t, s, stream, pmd.ReadOptions{Backward: true, From: pmd.End, Limit: 1})
	if err != nil || len(events) != 1 {
		t.Fatalf("last event of %s: %v", stream, err)
	}
	return events[0].ID
}
