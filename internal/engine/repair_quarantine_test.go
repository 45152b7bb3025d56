package engine_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestRepairThatCannotQuarantineChangesNothing: a repair whose quarantine file cannot be
// written (a directory that does not exist, a path that is a directory) fails before it
// changes anything: the index is still there, and the store opens without rebuilding it.
func TestRepairThatCannotQuarantineChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		quarantine func(t *testing.T) string
	}{
		{"in a missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing", "q.bin") }},
		{"a directory", func(t *testing.T) string { return t.TempDir() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := makeStore(t, 20)
			flip(t, dir, 3)
			before := snapshot(t, dir)
			p, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := p.Apply(tc.quarantine(t)); err == nil {
				t.Fatal("Apply succeeded")
			}
			if after := snapshot(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("the failed repair changed the data directory: %d files before, %d after", len(before), len(after))
			}
			if _, err := os.Stat(filepath.Join(dir, engine.IndexDir)); err != nil {
				t.Errorf("the index: %v", err)
			}
		})
	}
}
