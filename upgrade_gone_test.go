package pmd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestGoneRecordsWithoutIDs: a store whose scavenge ran before gone records kept ids (the
// fixture pm/testdata/records1, pmd at 71aa2c0: Tmp$1's three events deleted and
// scavenged) opens, its gone records read as gone records without an id, and the ids of
// the events they replaced are forgotten by an index rebuilt from the log, as log/FORMAT.md
// ("Gone ids") and docs/retention.md say: an append may take one again.
func TestGoneRecordsWithoutIDs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	copyDir(t, filepath.Join("pm", "testdata", "records1", "store"), dir)
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gone := 0
	if err := s.ScanRecords(ctx, 1, s.LastPosition(), func(r *pmdlog.Record) error {
		if r.Kind == pmdlog.KindGone {
			gone++
			if r.Gone.ID != uuid.Nil {
				t.Errorf("the gone record at %d, written before gone records kept ids, reads with id %s", r.Position, r.Gone.ID)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if gone == 0 {
		t.Fatal("the fixture holds no gone record: the test shows nothing")
	}
	// The fixture's ids: uuid.NewSHA1(uuid.NameSpaceOID, "Tmp$1 0"), … (its mkfixture).
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("Tmp$1 0"))
	if _, err := s.Event(ctx, id); !errors.Is(err, pmd.ErrEventNotFound) {
		t.Fatalf("Event(%s), scavenged: %v, want event_not_found", id, err)
	}
	if _, err := s.Append(ctx, "New$1", pmd.NoStream, pmd.EventData{ID: id, Type: "T"}); err != nil {
		t.Fatalf("append of an id scavenged before gone records kept ids, after a rebuild: %v, want it written", err)
	}
}
