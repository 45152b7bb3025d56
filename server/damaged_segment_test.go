package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestMissingSegmentOverHTTP: a segment file missing from the log hides a run of
// positions. Paged reads of $all that follow next, and skip a page that fails with
// corrupt to the position after the one it names, get every other event and meet the
// damage at most twice, never as position 0; an SSE subscriber gets the events before
// the run, then an error event whose id is the run's last position, and resumed from
// that id it gets the events after the run.
func TestMissingSegmentOverHTTP(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quiet(), SegmentSize: 4096}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 150
	for i := range n {
		e := pmd.EventData{Type: "E", Data: map[string]any{"i": i, "pad": strings.Repeat("p", 150)}}
		if _, err := store.Append(context.Background(), fmt.Sprintf("s-%d", i%3), pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	segs := damagetest.Segments(t, dir)
	if len(segs) < 6 {
		t.Fatalf("%d segments, want at least 6", len(segs))
	}
	lostFirst, lostLast := damagetest.First(t, segs[3]), damagetest.First(t, segs[4])-1
	if err := os.Remove(segs[3]); err != nil {
		t.Fatal(err)
	}
	store, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet()}))
	t.Cleanup(func() {
		ts.Close()
		store.Close()
	})
	e := &env{t: t, store: store, ts: ts}
	var want []uint64
	for p := uint64(1); p <= n; p++ {
		if p < lostFirst || p > lostLast {
			want = append(want, p)
		}
	}

	var got []uint64
	damage := 0
	for from := uint64(1); damage <= 2; {
		r := e.do("GET", fmt.Sprintf("/v1/all?from=%d&limit=25", from), nil)
		if r.status == http.StatusInternalServerError {
			r.mustError(t, http.StatusInternalServerError, "corrupt")
			damage++
			pos, _ := strconv.ParseUint(fmt.Sprint(r.body["position"]), 10, 64)
			if pos < from || pos < lostFirst || pos > lostLast {
				t.Fatalf("page from %d: %s, want a position of the lost run %d..%d at or after %d", from, r.raw, lostFirst, lostLast, from)
			}
			from = pos + 1
			continue
		}
		r.must(t, http.StatusOK)
		for _, ev := range r.events(t) {
			p, _ := strconv.ParseUint(fmt.Sprint(ev["position"]), 10, 64)
			got = append(got, p)
		}
		if r.body["next"] == nil {
			break
		}
		next, _ := strconv.ParseUint(fmt.Sprint(r.body["next"]), 10, 64)
		from = next
	}
	if !slices.Equal(got, want) || damage > 2 {
		t.Fatalf("paged reads: positions %v, damage met %d times; want %v, at most twice", got, damage, want)
	}

	sub := openSSE(t, ts.URL+"/v1/subscribe?from=1", "")
	for p := uint64(1); p < lostFirst; p++ {
		if id, _ := sub.event(t); id != fmt.Sprint(p) {
			t.Fatalf("subscribe: event %s, want %d", id, p)
		}
	}
	f := sub.next(t)
	var body errorBody
	if f.event != "error" || json.Unmarshal([]byte(f.data), &body) != nil || body.Error != codeCorrupt ||
		body.Position == nil || *body.Position != lostLast || f.id != fmt.Sprint(lostLast) {
		t.Fatalf("subscribe: after the events before the lost run: %+v, want an error event, corrupt, with id and position %d", f, lostLast)
	}
	sub.waitEnd(t)
	resumed := openSSE(t, ts.URL+"/v1/subscribe?from=1", f.id)
	for p := lostLast + 1; p <= n; p++ {
		if id, _ := resumed.event(t); id != fmt.Sprint(p) {
			t.Fatalf("subscribe resumed with Last-Event-ID %s: event %s, want %d", f.id, id, p)
		}
	}
	resumed.close()
}
