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

// lockedMessage is what pmd serve and the offline commands say, after "pmd CMD: ", of
// the data directory dir this process holds locked, then: the same words for each,
// naming dir once.
func lockedMessage(dir, then string) string {
	if _, err := os.Stat("/proc/locks"); err != nil {
		return fmt.Sprintf("data directory %s is in use by another pmd: stop it first%s\n", dir, then)
	}
	return fmt.Sprintf("data directory %s is in use by another pmd (pid %d): stop it first%s\n", dir, os.Getpid(), then)
}

// TestServeLockedSaysWhoHoldsIt: pmd serve of a data directory another process has
// open names that process's pid (read off /proc/locks) and says what to do, exiting 3,
// in the words of the offline commands (TestOfflineCommandsOnALockedStore): it said only
// that the directory was in use by another process, then, naming the directory twice,
// "data directory locked: another pmd (pid N) is running on DIR".
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
	want := "pmd serve: " + lockedMessage(dir, ", or serve another --data")
	code, _, errOut := runPMD(t, context.Background(), "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if code != exitTrouble || !strings.HasSuffix(errOut, want) || strings.Count(errOut, dir) != 1 {
		t.Fatalf("exit %d, stderr %q; want %d ending %q", code, errOut, exitTrouble, want)
	}
}

// TestOfflineCommandsOnALockedStore: pmd verify, repair and scavenge of a data directory
// another process has open name that process's pid in the words of pmd serve, exiting 3:
// they said only to stop the pmd that has it open, then "pmd: DIR is in use by another
// process: data directory locked; another pmd (pid N) is running on DIR: stop it first".
func TestOfflineCommandsOnALockedStore(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // this process is the other pmd
	for _, cmd := range [][]string{{"verify"}, {"repair"}, {"repair", "--yes"}, {"scavenge"}} {
		want := "pmd " + cmd[0] + ": " + lockedMessage(dir, "")
		code, _, errOut := runPMD(t, context.Background(), append(cmd, dir)...)
		if code != exitTrouble || errOut != want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", strings.Join(cmd, " "), code, errOut, exitTrouble, want)
		}
	}
}
