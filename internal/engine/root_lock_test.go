package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRootOpenLeavesTheUsersLockAlone: root opening a store whose data directory is
// root:pmd (setgid) and whose files the pmd user wrote (sudo pmd scavenge) leaves LOCK
// the user's. Lock gave LOCK to the directory's owner whenever root took it, so it became
// root:pmd, 0600, and the user's next start failed: "open .../LOCK: permission denied".
func TestRootOpenLeavesTheUsersLockAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the store as another uid")
	}
	for _, tc := range []struct {
		name string
		root func(t *testing.T, dir string)
	}{
		{"an open", func(t *testing.T, dir string) {
			s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"a scavenge", func(t *testing.T, dir string) {
			s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Scavenge(context.Background(), pmd.ScavengeOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "store")
			events := len(appendEvents(t, dir, 0, 30))
			giveAll(t, top)
			if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
				t.Fatal(err)
			}
			// The data directory is root:pmd, setgid; the user made every file in it.
			if err := os.Chown(dir, 0, storeUID); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o770|os.ModeSetgid); err != nil {
				t.Fatal(err)
			}
			tc.root(t, dir)
			lock := filepath.Join(dir, engine.LockFile)
			fi, err := os.Lstat(lock)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != storeUID {
				t.Errorf("%s is %d:%d %v after root's %s, want the user's %d", lock, st.Uid, st.Gid, fi.Mode(), tc.name, storeUID)
			}
			out := openAs(t, top, dir, storeUID, "open")
			if !strings.Contains(out, fmt.Sprintf("read %d events", events)) {
				t.Errorf("the store's user read %s, want %d events", out, events)
			}
		})
	}
}
