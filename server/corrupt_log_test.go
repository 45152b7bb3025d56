package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestCorruptReadLoggedOnceAMinute: a reader stuck at a damaged record (a consumer that
// retries its page) fails the same way on every try; the scrub logged the damage and
// /healthz names it, so the first failed read is logged at ERROR and the next ones of
// the minute for that record are counted, not logged one each (a client retrying every
// 100 ms wrote 36,000 lines an hour). A read that meets another damaged record is
// logged at once.
func TestCorruptReadLoggedOnceAMinute(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet(), SegmentSize: 16 << 10}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e := pmd.EventData{Type: "E", Data: map[string]any{"mark": fmt.Sprintf("MARK-%03d-MARK", i)}}
		if _, err := store.Append(context.Background(), "s", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "MARK-004-MARK") // position 5
	damagetest.FlipIn(t, dir, "MARK-014-MARK") // position 15
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	var logged syncBuffer
	ts := httptest.NewServer(New(store, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}))
	t.Cleanup(func() {
		ts.Close()
		store.Close()
	})
	e := &env{t: t, store: store, ts: ts}
	for range 5 {
		e.do("GET", "/v1/all?from=5", nil).mustError(t, http.StatusInternalServerError, "corrupt")
		e.do("GET", "/v1/streams/s?from=4", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	}
	lines := func(position string) int {
		re := regexp.MustCompile(`msg="request failed".* err="damaged record at position ` + position + `\D`)
		return len(re.FindAllString(logged.String(), -1))
	}
	if n := lines("5"); n != 1 {
		t.Fatalf("%d lines of failed requests for 10 reads of the damaged record at position 5, want 1:\n%s", n, logged.String())
	}
	e.do("GET", "/v1/all?from=15", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	if n := lines("15"); n != 1 {
		t.Fatalf("a read of another damaged record (position 15) logged %d lines, want 1:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "level=ERROR") {
		t.Fatalf("the failed reads were not logged at ERROR:\n%s", logged.String())
	}
}
