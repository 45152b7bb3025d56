package pmd_test

import (
	"context"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/powercut"
)

// A new store's id is written once, at its creation, synced whatever NoSync says (as the
// format file is): a power cut after the first Open, even with syncing off, leaves the
// directory a store that opens again, with the same id.
func TestStoreIDSurvivesAPowerCutAfterCreation(t *testing.T) {
	for _, noSync := range []bool{true, false} {
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
		opts := pmd.Options{Logger: quietLogger(), NoSync: noSync, NoScrub: true}
		s, err := pmd.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		id := s.ID()
		if _, err := s.Append(context.Background(), "A-1", pmd.Any, pmd.EventData{Type: "T"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := disk.Cut(); err != nil {
			t.Fatal(err)
		}
		s, err = pmd.Open(dir, opts)
		if err != nil {
			t.Fatalf("NoSync %v: Open after a power cut: %v", noSync, err)
		}
		if got := s.ID(); got != id {
			t.Errorf("NoSync %v: store id %s after a power cut, want %s", noSync, got, id)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
