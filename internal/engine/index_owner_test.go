package engine_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestIndexOfAnotherUser: a store its user opens after root opened it once (sudo pmd
// scavenge, a pmd serve started as root) holds index files only root can read; the user
// may remove them from its own index directory, so the index is rebuilt from the log and
// the store opens with every event (since a8ed9d5 the open failed for good). An index in
// a directory the user may not change (another user's) is left whole, and the open
// fails naming the permission error and what to do; pmd verify says to run it as the
// store's user.
func TestIndexOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to open the store as another uid")
	}
	for _, tc := range []struct {
		name     string
		indexDir int // the owner of the index directory; its files stay root's
		want     string
	}{
		{"files left by root", storeUID, "open"},
		{"directory of another user", 0, "refused"},
		{"the store's user's, read-only", storeUID, "refused read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "store")
			appendEvents(t, dir, 0, 50)
			giveAll(t, top)
			if err := os.Chmod(filepath.Dir(top), 0o755); err != nil {
				t.Fatal(err)
			}
			// Root opens it once: the index's new manifest and options are root's, 0640.
			events := len(appendEvents(t, dir, 50, 10))
			idx := filepath.Join(dir, engine.IndexDir)
			if err := os.Chown(idx, tc.indexDir, tc.indexDir); err != nil {
				t.Fatal(err)
			}
			if tc.want == "refused read-only" {
				// Root's files given back too, then nothing left writable.
				giveAll(t, top)
				readOnly(t, dir)
			}
			before := entries(t, idx)
			out := openAs(t, top, dir, storeUID, tc.want)
			if tc.want == "open" {
				if !strings.Contains(out, fmt.Sprintf("read %d events", events+50)) {
					t.Errorf("the store's user read %s, want %d events", out, events+50)
				}
				return
			}
			if after := entries(t, idx); !slices.Equal(after, before) {
				t.Errorf("the index holds %v after the refused open, want %v as before", after, before)
			}
		})
	}
}

// TestIndexOfAnotherUserHelper is the process TestIndexOfAnotherUser runs as the
// store's user: it opens the store and counts its events, or checks that the open is
// refused as the test wants.
func TestIndexOfAnotherUserHelper(t *testing.T) {
	dir := os.Getenv("PMD_ENGINE_STORE_DIR")
	if dir == "" {
		t.Skip("run by TestIndexOfAnotherUser")
	}
	if os.Getenv("PMD_ENGINE_STORE_WANT") == "refused read-only" {
		// Its own store made read-only: the error says to give it write permission, not
		// to chown what it owns; pmd verify checks it.
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded in a read-only data directory")
		}
		if !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "this user owns") || !strings.Contains(err.Error(), "chmod -R u+w "+dir) {
			t.Errorf("Open: %v, want the permission error and how to give this user write permission", err)
		}
		r, err := engine.Verify(context.Background(), dir, nil)
		if err != nil || !r.OK() || !r.Agrees {
			t.Errorf("Verify of the read-only store: %+v, %v; want it checked, ok", r, err)
		}
		return
	}
	if os.Getenv("PMD_ENGINE_STORE_WANT") == "refused" {
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded in another user's index directory")
		}
		if !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "chown -R") || !strings.Contains(err.Error(), "rebuilds it") {
			t.Errorf("Open: %v, want the permission error and how to give the index back or have it rebuilt", err)
		}
		// pmd verify says whose it is to run, not that a start rebuilds it.
		r, err := engine.Verify(context.Background(), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, "run pmd verify as the store's user") }) {
			t.Errorf("Verify's problems %q do not say to run it as the store's user", r.Problems)
		}
		return
	}
	fmt.Println("read " + strconv.Itoa(countEvents(t, dir)) + " events")
}

// readOnly takes the write permission of everything under dir away (chmod -R a-w).
func readOnly(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()&^0o222)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range list {
		ns = append(ns, e.Name())
	}
	return ns
}
