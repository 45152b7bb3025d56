package pmd_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestOpenErrorsMatchFromTheRootPackage: a caller of pmd.Open tells a directory in use, one
// of a later format and one that lost its log apart with this package's values alone.
func TestOpenErrorsMatchFromTheRootPackage(t *testing.T) {
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = pmd.Open(dir, pmd.Options{NoSync: true})
		if !errors.Is(err, pmd.ErrLocked) {
			t.Fatalf("second Open: %v, want pmd.ErrLocked", err)
		}
		var le *pmd.LockedError
		if !errors.As(err, &le) || le.Dir != dir {
			t.Fatalf("second Open: %v, want a *pmd.LockedError for %s", err, dir)
		}
		if le.PID != 0 && le.PID != os.Getpid() {
			t.Fatalf("LockedError.PID = %d, want this process (%d) or 0", le.PID, os.Getpid())
		}
	})
	t.Run("later format", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("pmd data directory format 99\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := pmd.Open(dir, pmd.Options{NoSync: true}); !errors.Is(err, pmd.ErrFormat) {
			t.Fatalf("Open: %v, want pmd.ErrFormat", err)
		}
	})
	t.Run("lost log", func(t *testing.T) {
		dir := t.TempDir()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// What a format 1 store that lost its log looks like: no FORMAT, no segment, its id.
		for _, name := range []string{"FORMAT", "log"} {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		_, err = pmd.Open(dir, pmd.Options{NoSync: true})
		var lost *pmd.LostLogError
		if !errors.As(err, &lost) {
			t.Fatalf("Open: %v, want a *pmd.LostLogError", err)
		}
	})
}
