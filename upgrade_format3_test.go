package pmd_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// setFormat writes FORMAT of the data directory dir as format v.
func setFormat(t *testing.T, dir, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("pmd data directory format "+v+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRaisesFormat3: a data directory of format 3 (testdata/format2's data as this
// release leaves it, its index in today's layout, with FORMAT saying 3: what a release of
// format 3 left) is raised to format 5 at its first open, once nothing refuses it, and
// with nothing else to upgrade, logged as refusing the
// releases that read format 3 or 4 (they read a gone record that keeps its event's id,
// or a commit record with a slot, as damage, and cut it at the log's tail with
// everything after it); the store reads what
// was written, and a second open upgrades nothing. pmd verify and the plan of pmd repair
// read format 3, note the upgrade and leave FORMAT as it is.
func TestOpenRaisesFormat3(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "format2", &logs)
	if err := open().Close(); err != nil {
		t.Fatal(err)
	}
	setFormat(t, dir, "3")
	logs.Reset()

	checkRaised(t, dir, 3, "releases of pmd that wrote format 3 or 4", "releases of pmd that read data directory format 3 or 4", &logs, want, open)
}

// TestLaterFormatRefused: a data directory of a format above this release's (FORMAT says
// 6) is refused by Open, pmd verify and pmd repair with ErrFormat, naming the format and
// the ones this release reads, and FORMAT is left as it is.
func TestLaterFormatRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "Order$1", pmd.Any, ev("Placed"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	setFormat(t, dir, "6")
	const msg = "FORMAT: format 6, this pmd reads formats 1 to 5: unknown data directory format"
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"open", func() error {
			s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				s.Close()
			}
			return err
		}},
		{"verify", func() error {
			_, err := engine.Verify(context.Background(), dir, nil)
			return err
		}},
		{"repair", func() error {
			plan, err := engine.PlanRepair(dir, nil)
			if err == nil {
				plan.Close()
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, engine.ErrFormat) || !strings.Contains(err.Error(), msg) {
				t.Fatalf("%s of a format 6 directory: %v, want %q", tc.name, err, msg)
			}
			checkFormat(t, dir, 6)
		})
	}
}

// TestRefusedOpenKeepsFormat3: an Open of a format 3 directory refused because its
// STORE_ID does not read leaves FORMAT at 3, so that the release that wrote it still
// opens it once STORE_ID is mended. It raised FORMAT to 4 before it read STORE_ID.
func TestRefusedOpenKeepsFormat3(t *testing.T) {
	var logs lockedBuffer
	dir, _, open := openFixture(t, "format2", &logs)
	if err := open().Close(); err != nil {
		t.Fatal(err)
	}
	setFormat(t, dir, "3")
	if err := os.WriteFile(filepath.Join(dir, engine.StoreIDFile), []byte("not a uuid\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if s, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err == nil {
		s.Close()
		t.Fatal("Open of a store whose STORE_ID does not read succeeded")
	} else if !strings.Contains(err.Error(), "is not a store id") {
		t.Fatalf("Open: %v; want it refused for STORE_ID", err)
	}
	checkFormat(t, dir, 3)
}
