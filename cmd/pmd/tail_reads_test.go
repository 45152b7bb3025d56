package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/server"
)

// TestTailOfAStreamReadsItOnce: before it follows a stream, pmd tail reads it once,
// whether that read finds where to start (no --from) or only checks that the daemon
// lets the token read it (--from); a stream whose last record is damaged is followed
// from after that record.
func TestTailOfAStreamReadsItOnce(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		damageLast bool
		wantFrom   string
	}{
		{"from the end", nil, false, "from 3"},
		{"from a version", []string{"--from", "1"}, false, "from 1"},
		{"from the end, its last record damaged", nil, true, "from 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()}
			store, err := pmd.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 3 {
				e := pmd.EventData{Type: "E", Data: map[string]any{"mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
				if _, err := store.Append(ctx, "s", pmd.Any, e); err != nil {
					t.Fatal(err)
				}
			}
			if tt.damageLast {
				// Another stream's event after it, so that the damage is not a torn tail
				// that Open cuts.
				if _, err := store.Append(ctx, "other", pmd.Any, pmd.EventData{Type: "E"}); err != nil {
					t.Fatal(err)
				}
				if err := store.Close(); err != nil {
					t.Fatal(err)
				}
				damagetest.FlipIn(t, dir, "MARK-002-MARK")
				if store, err = pmd.Open(dir, opts); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { store.Close() }) // after the tail and the server: cleanups run last first
			var mu sync.Mutex
			var reads []string
			api := server.New(store, server.Options{Logger: quiet()})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/streams/") {
					mu.Lock()
					reads = append(reads, r.URL.String())
					mu.Unlock()
				}
				api.ServeHTTP(w, r)
			}))
			t.Cleanup(ts.Close)

			tail := runInBackground(t, ctx, append([]string{"tail", "--addr", ts.URL, "--stream", "s"}, tt.args...)...)
			tail.errOut.waitFor(t, "following s")
			if code := tail.stop(); code != exitOK {
				t.Fatalf("tail exit %d; stderr:\n%s", code, tail.errOut.String())
			}
			if !strings.Contains(tail.errOut.String(), tt.wantFrom+" ") {
				t.Fatalf("stderr %q, want it to follow %s", tail.errOut.String(), tt.wantFrom)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reads) != 1 {
				t.Fatalf("tail read the stream %d times before following it, want once: %v", len(reads), reads)
			}
		})
	}
}
