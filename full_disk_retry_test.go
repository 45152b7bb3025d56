package pmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestRetryOfAnAppendRefusedOnAFullDisk: an append refused as unavailable on a full disk
// wrote nothing, so its exact retry (same stream, same id) is refused the same way while
// the disk stays full, and stores the event once space is freed. A failed batch
// planned in the stage of the last batch written (the committer's two stages take
// turns) left its overlay standing as the batch in flight: the next plans read its ids
// as written, and the retries failed with duplicate_event, though the event was in no
// stream and no read knew its id.
func TestRetryOfAnAppendRefusedOnAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := damagetest.SmallDisk(t, "4m")
	s, err := pmd.Open(filepath.Join(mnt, "data"), pmd.Options{Logger: quietLogger(), SegmentSize: 256 << 10, NoScrub: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o640); err != nil {
		t.Fatal(err)
	}
	// Before the store closes (deferred calls run last first): a store closing on a
	// full disk waits for its index to flush.
	defer os.Remove(filler)
	ctx := context.Background()
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("the file system never filled up")
		}
		if _, err = s.Append(ctx, "Pad$1", pmd.Any, ev("Pad", "pad", strings.Repeat("x", 500))); err != nil {
			break
		}
	}
	if !errors.Is(err, pmd.ErrUnavailable) {
		t.Fatalf("append on a full disk: %v, want ErrUnavailable", err)
	}
	// Retried while the disk is still full: each try is refused as unavailable, for
	// the same reason, and never as a duplicate of a try before.
	e := ev("E", "pad", strings.Repeat("x", 500))
	e.ID = uuid.New()
	for try := 1; try <= 3; try++ {
		if _, err := s.Append(ctx, "Order$1", pmd.Any, e); !errors.Is(err, pmd.ErrUnavailable) {
			t.Fatalf("try %d on a full disk: %v, want ErrUnavailable", try, err)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Order$1", pmd.Any, e); err != nil {
		t.Fatalf("retry once space is freed: %v", err)
	}
	got, err := s.Event(ctx, e.ID)
	if err != nil || got.Stream != "Order$1" {
		t.Fatalf("the event after its retry: %+v, %v", got, err)
	}
}
