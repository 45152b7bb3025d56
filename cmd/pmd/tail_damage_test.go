package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/server"
)

// TestTailGoesOnPastADamagedRecord: pmd tail reports a damaged record on stderr and
// prints the events after it, instead of stopping there.
func TestTailGoesOnPastADamagedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		e := pmd.EventData{Type: "E", Data: map[string]any{"i": i, "mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
		if _, err := store.Append(ctx, "s", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "MARK-004-MARK")
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(store, server.Options{Logger: quiet()}))
	t.Cleanup(func() { // after the tail's: cleanups run last first
		ts.Close()
		store.Close()
	})

	tail := runInBackground(t, ctx, "tail", "--addr", strings.TrimPrefix(ts.URL, "http://"), "--json", "--from", "1")
	tail.out.waitFor(t, `"i":9`)
	if code := tail.stop(); code != exitOK {
		t.Fatalf("tail exit %d; stderr:\n%s", code, tail.errOut.String())
	}
	if !strings.Contains(tail.errOut.String(), "skipped a damaged record") || !strings.Contains(tail.errOut.String(), "position 5") {
		t.Fatalf("stderr does not report the damaged record at position 5:\n%s", tail.errOut.String())
	}
	if s := tail.out.String(); strings.Contains(s, `"i":4`) || strings.Count(s, `"type":"E"`) != 9 {
		t.Fatalf("tail printed, want the 9 undamaged events:\n%s", s)
	}
}
