package pmd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/powercut"
)

const scavengeSyncChildEnv = "PMD_SCAVENGE_SYNC_CHILD_DIR"

var scavengeSyncOptions = pmd.Options{Logger: quietLogger(), NoSync: true, SegmentSize: 4096, NoScrub: true}

// TestScavengeSyncChild deletes A-1 in the store in its directory, scavenges, and exits
// without closing the store, as a process the power cut stops would.
func TestScavengeSyncChild(t *testing.T) {
	dir := os.Getenv(scavengeSyncChildEnv)
	if dir == "" {
		t.Skip("run by TestScavengeKeepsTheDeleteItCarriesOut as its child process")
	}
	s, err := pmd.Open(dir, scavengeSyncOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if err := s.DeleteStream(ctx, "A-1", pmd.Any); err != nil {
		fmt.Fprintln(os.Stderr, "delete:", err)
		os.Exit(3)
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "scavenge:", err)
		os.Exit(4)
	}
	fmt.Printf("scavenged: %d gone\n", res.Gone)
	os.Exit(0)
}

// TestScavengeKeepsTheDeleteItCarriesOut: with syncing off, a scavenge that removes the
// events of a deleted stream makes the deletion durable before it does (log.Rewrite
// syncs the segments it writes, whatever NoSync says): a power cut right after it leaves
// the stream deleted, never its events removed while the deletion is lost and the
// stream reads as never written. Checked with the index as the cut left it and with the
// index removed (rebuilt from the log alone).
func TestScavengeKeepsTheDeleteItCarriesOut(t *testing.T) {
	if os.Getenv(scavengeSyncChildEnv) != "" {
		t.Skip("child")
	}
	powerCutAfterScavenge(t, "TestScavengeSyncChild", scavengeSyncChildEnv, "A-1", 2, func(s *pmd.Store) {
		for i := range 5 {
			mustAppend(t, s, "A-1", pmd.Any, ev("T", "i", i))
		}
		for i := range 200 {
			mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
		}
	})
}

const scavengeDuringChildEnv = "PMD_SCAVENGE_DURING_CHILD_DIR"

// TestScavengeDuringChild scavenges the store in its directory and deletes B-1 from the
// scavenge's progress callback after its first segment, so that the deletion is written
// while the scavenge runs; it exits without closing the store. The callback then reads
// B-1's state, which waits for the index to hold the deletion: DeleteStream returns once
// the deletion is in the log, before the applier indexes it, and each segment's rewrite
// reads its dead marks from the index, so that on a loaded machine the segments holding
// B-1's events were read with the deletion not yet indexed and the scavenge removed
// nothing.
func TestScavengeDuringChild(t *testing.T) {
	dir := os.Getenv(scavengeDuringChildEnv)
	if dir == "" {
		t.Skip("run by TestScavengeKeepsTheDeleteMadeWhileItRuns as its child process")
	}
	s, err := pmd.Open(dir, scavengeSyncOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var delErr error
	deleted := false
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1, Progress: func(done, total int64) {
		if !deleted {
			deleted = true
			delErr = s.DeleteStream(ctx, "B-1", pmd.Any)
			if delErr == nil {
				var info pmd.StreamInfo
				info, delErr = s.StreamInfo("B-1")
				if delErr == nil && info.Exists {
					delErr = fmt.Errorf("B-1 still exists after its DeleteStream returned: %+v", info)
				}
			}
		}
	}})
	if delErr != nil {
		fmt.Fprintln(os.Stderr, "delete:", delErr)
		os.Exit(3)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scavenge:", err)
		os.Exit(4)
	}
	fmt.Printf("scavenged: %d gone\n", res.Gone)
	os.Exit(0)
}

// TestScavengeKeepsTheDeleteMadeWhileItRuns: with syncing off, a deletion written while a
// scavenge runs, and carried out by one of its later segments, is durable before that
// segment's rewrite is: a power cut right after the scavenge leaves B-1 deleted or whole,
// never existing with its events gone.
func TestScavengeKeepsTheDeleteMadeWhileItRuns(t *testing.T) {
	if os.Getenv(scavengeDuringChildEnv) != "" {
		t.Skip("child")
	}
	// Fillers first, so that B-1's events are past the first segment: the deletion comes
	// after the scavenge rewrote that one.
	powerCutAfterScavenge(t, "TestScavengeDuringChild", scavengeDuringChildEnv, "B-1", 6, func(s *pmd.Store) {
		for i := range 300 {
			mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
		}
		for i := range 5 {
			mustAppend(t, s, "B-1", pmd.Any, ev("T", "i", i))
		}
		for i := range 400 {
			mustAppend(t, s, "Filler", pmd.Any, ev("F", "i", i))
		}
	})
}

// powerCutAfterScavenge fills a store on a power-cut disk with fill (stream's 5 events
// among fillers, over at least minSegments segments), runs the child test child (env
// names the store's directory to it), which deletes stream and scavenges, cuts the
// power, and reopens, with the index as the cut left it and with it removed (rebuilt
// from the log alone): stream must be deleted at version 4 or hold its 5 events, never
// exist with its events gone.
func powerCutAfterScavenge(t *testing.T, child, env, stream string, minSegments int, fill func(*pmd.Store)) {
	t.Helper()
	for _, removeIndex := range []bool{false, true} {
		t.Run(fmt.Sprintf("index removed %v", removeIndex), func(t *testing.T) {
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
			s, err := pmd.Open(dir, scavengeSyncOptions)
			if err != nil {
				t.Fatal(err)
			}
			fill(s)
			if err := s.Close(); err != nil { // syncs the log
				t.Fatal(err)
			}
			if segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*[0-9]")); len(segs) < minSegments {
				t.Fatalf("%d segments, want %d or more", len(segs), minSegments)
			}

			cmd, sc, stderr := startChild(t, child, env+"="+dir)
			var out []string
			for sc.Scan() {
				out = append(out, sc.Text())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v: %s", err, stderr.String())
			}
			if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "scavenged: ") || out[len(out)-1] == "scavenged: 0 gone" {
				t.Fatalf("child said %q, want a scavenge that removed %s's events", out, stream)
			}
			if err := disk.Cut(); err != nil {
				t.Fatal(err)
			}
			if removeIndex {
				if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
					t.Fatal(err)
				}
			}

			s, err = pmd.Open(dir, scavengeSyncOptions)
			if err != nil {
				t.Fatalf("Open after the power cut: %v", err)
			}
			defer s.Close()
			info := streamInfo(t, s, stream)
			events, rerr := readStream(t, s, stream, pmd.ReadOptions{})
			switch {
			case !info.Exists && info.Version == 4:
				// deleted, the deletion durable: what the scavenge carried out
			case info.Exists && rerr == nil && len(events) == 5:
				// the deletion lost and the events kept: consistent too
			default:
				t.Errorf("%s after a power cut right after the scavenge: %+v, read %d events (%v); want it deleted at version 4 or its 5 events",
					stream, info, len(events), rerr)
			}
		})
	}
}
