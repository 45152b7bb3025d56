package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestVerifyReadOnlyCopyWithoutLock: a copy of a store on a read-only file system (a
// backup mounted read-only, a snapshot) that has no LOCK file (copies leave it behind,
// `cp` of a live store's files skips nothing but a restore may) is verified like any
// other: no pmd can hold it open for writing there, so no lock is needed, and flock(2)
// cannot create the file to lock.
func TestVerifyReadOnlyCopyWithoutLock(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := damagetest.SmallDisk(t, "16m")
	dir := filepath.Join(mnt, "data")
	appendEvents(t, dir, 0, 20)
	if err := os.Remove(filepath.Join(dir, engine.LockFile)); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount the tmpfs read-only (%v): %s", err, strings.TrimSpace(string(out)))
	}
	r := verify(t, dir)
	if !r.OK() || !r.Agrees || r.Events != 20 {
		t.Fatalf("report %+v, want ok with 20 events", r)
	}
	if _, err := os.Stat(filepath.Join(dir, engine.LockFile)); !os.IsNotExist(err) {
		t.Fatalf("LOCK after verify: %v, want none", err)
	}
}
