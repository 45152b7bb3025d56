package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestVerifyAfterACrashBeforeTheFirstIndexFlush: a new store that stops without a
// Close (kill -9, a power cut) before its index was ever flushed leaves an index that
// holds nothing, not even its format version, which the next start writes. Verify
// reports the replay the start does, not damage.
func TestVerifyAfterACrashBeforeTheFirstIndexFlush(t *testing.T) {
	live := t.TempDir()
	s, err := pmd.Open(live, pmd.Options{NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 5 {
		if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
	}
	// The files as the store left them on disk: what a crash leaves.
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(live)); err != nil {
		t.Fatal(err)
	}
	r := verify(t, crashed)
	if !r.OK() || !r.Agrees || r.Index != 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "the next start replays 5 record(s)") {
		t.Fatalf("report %+v", r)
	}
}
