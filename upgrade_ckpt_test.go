package pmd_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLeftoverFormat1CheckpointIsRemoved: format 1's upgrade writes FORMAT, then removes
// index.ckpt, the old in-memory index's checkpoint (as large as that index was). A
// start killed between the two left a format 5 directory holding it, which no later
// start read or removed; the next start removes it, and the store reads the same.
func TestLeftoverFormat1CheckpointIsRemoved(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "format1", &logs)
	ckptPath := filepath.Join(dir, "index.ckpt")
	ckpt, err := os.ReadFile(ckptPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := open().Close(); err != nil {
		t.Fatal(err)
	}
	checkFormat(t, dir, 5)
	// The directory as the killed start left it: FORMAT written, index.ckpt still there.
	if err := os.WriteFile(ckptPath, ckpt, 0o640); err != nil {
		t.Fatal(err)
	}
	s := open()
	t.Cleanup(func() { s.Close() })
	if _, err := os.Stat(ckptPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("index.ckpt is still there after a start of the upgraded directory (%v)", err)
	}
	checkFormat(t, dir, 5)
	checkFixture(t, s, want)
}
