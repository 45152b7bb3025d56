package pmd_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestIndexDamagedAtOpenIsRebuiltAndHealthy damages the index's tables of a closed store
// so that the next Open cannot open the index: Open rebuilds it from the log at once,
// and the store is then healthy (the damage was in the index it replaced, which is
// gone), answers everything as before, and logs the damage once, as a warning that it
// is rebuilt now (not an error that it will be at the next start), rather than once per
// table read.
func TestIndexDamagedAtOpenIsRebuiltAndHealthy(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%50), pmd.Any, ev("E", "i", i))
	}
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "index", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("the index has no tables after a close")
	}
	for _, path := range tables {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 64; i < len(b)/2; i += 256 {
			b[i] ^= 0x20
		}
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var logs lockedBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatalf("open after the index was damaged: %v", err)
	}
	defer s.Close()
	waitScrub(t, s)
	out := logs.String()
	if !strings.Contains(out, "rebuilding it from the log") {
		t.Fatalf("the index was not rebuilt at open:\n%s", out)
	}
	t.Log(out)
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("Problems() = %q after the index was rebuilt at open, want none", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.rebuild")); err == nil {
		t.Fatal("index.rebuild left after the rebuild: the next start would rebuild again")
	}
	// The damage is fixed before Open returns: a warning that says so, not an error
	// that promises a rebuild at the next start.
	if n := strings.Count(out, "level=ERROR"); n > 0 || strings.Contains(out, "next start") {
		t.Fatalf("%d error lines, or a rebuild at the next start, for a damaged index Open rebuilt at once:\n%s", n, out)
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("the rebuilt index answers differently")
	}
}
