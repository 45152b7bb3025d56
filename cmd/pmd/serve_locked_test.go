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
