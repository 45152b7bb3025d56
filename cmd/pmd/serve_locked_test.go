package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestServeLockedSaysWhoHoldsIt: pmd serve of a data directory another process has
// open names that process's pid (read off /proc/locks) and says what to do, exiting 3:
// it said only that the directory was in use by another process.
func TestServeLockedSaysWhoHoldsIt(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lock, err := engine.Lock(dir) // this process is the other pmd
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	want := fmt.Sprintf("another pmd (pid %d) is running on %s: stop it first, or serve another --data", os.Getpid(), dir)
	if _, err := os.Stat("/proc/locks"); err != nil {
		want = fmt.Sprintf("another pmd is running on %s: stop it first, or serve another --data", dir)
	}
	code, _, errOut := runPMD(t, context.Background(), "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if code != exitTrouble || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, stderr %q; want %d saying %q", code, errOut, exitTrouble, want)
	}
}

// TestOfflineCommandsOnALockedStore: pmd verify, repair and scavenge of a data directory
// another process has open name that process's pid as pmd serve does, exiting 3: they
// said only to stop the pmd that has it open.
func TestOfflineCommandsOnALockedStore(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // this process is the other pmd
	want := fmt.Sprintf("another pmd (pid %d) is running on %s: stop it first", os.Getpid(), dir)
	if _, err := os.Stat("/proc/locks"); err != nil {
		want = fmt.Sprintf("another pmd is running on %s: stop it first", dir)
	}
	for _, cmd := range []string{"verify", "repair", "scavenge"} {
		code, _, errOut := runPMD(t, context.Background(), cmd, dir)
		if code != exitTrouble || !strings.Contains(errOut, "in use by another process") || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stderr %q; want %d saying %q", cmd, code, errOut, exitTrouble, want)
		}
	}
}
