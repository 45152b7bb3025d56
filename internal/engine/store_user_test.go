package engine_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd"
)

// The tests of a store root wrote in for another user (TestIndexOfAnotherUser,
// TestStoreRootWroteOpensForItsUser) give the store to storeUID and open it as that
// user in a copy of the test binary, TestIndexOfAnotherUserHelper.

const storeUID = 65534 // nobody: the store's user in the tests below

// giveAll gives every file and directory under dir to storeUID.
func giveAll(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, storeUID, storeUID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// openAs opens the store in dir as the user uid, in TestIndexOfAnotherUserHelper, a copy
// of the test binary in top, and returns what it printed. want is what the helper checks:
// "open" (it prints the events it read) or "refused".
func openAs(t *testing.T, top, dir string, uid uint32, want string) string {
	t.Helper()
	bin := filepath.Join(top, "engine.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestIndexOfAnotherUserHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PMD_ENGINE_STORE_DIR="+dir, "PMD_ENGINE_STORE_WANT="+want)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the store's user's open: %v\n%s", err, out)
	}
	return string(out)
}

// countEvents counts the events of the store in dir, read as this process's user.
func countEvents(t *testing.T, dir string) int {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for _, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}
