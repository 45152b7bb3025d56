package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestScavengeOfADamagedSegmentAnswersWhatItDid: a scavenge that meets a damaged
// segment keeps it as it is and scavenges the others, then fails with corrupt; its
// answer carries, beside the error and the damaged record's position, what the
// scavenge did (the bytes the other segments freed, the events erased, the quarantines
// removed), as its 200 does. It answered the error alone, and whoever scavenged learnt
// neither what was freed nor which quarantines were removed.
func TestScavengeOfADamagedSegmentAnswersWhatItDid(t *testing.T) {
	const damage, secret = "BITROT-IN-THIS-RECORD", "ERASED-SECRET"
	ctx := context.Background()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quiet(), SegmentSize: 4096}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	pad := pmd.EventData{Type: "P", Data: map[string]any{"p": strings.Repeat("x", 500)}}
	appendTo := func(stream string, events ...pmd.EventData) {
		t.Helper()
		for _, e := range events {
			if _, err := store.Append(ctx, stream, pmd.Any, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTo("other", pmd.EventData{Type: "T", Data: map[string]any{"s": damage}})
	for range 10 {
		appendTo("other", pad)
	}
	appendTo("user-1", pmd.EventData{Type: "T", Data: map[string]any{"s": secret}})
	for range 10 {
		appendTo("other", pad)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	damaged := damagetest.FlipIn(t, dir, damage)
	if segs := damagetest.Segments(t, dir); len(segs) < 3 || damaged != segs[0] {
		t.Fatalf("damage in %s, segments %v: the test no longer sets up what it checks", damaged, segs)
	}
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	srv := New(store, Options{Logger: quiet()})
	ts := httptest.NewServer(srv)
	ts.Client().Transport = newValidating(t, ts.Client().Transport)
	t.Cleanup(func() {
		ts.Close()
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &env{t: t, store: store, srv: srv, ts: ts}
	e.do("POST", "/v1/streams/user-1/erase", nil).must(t, http.StatusNoContent)

	r := e.do("POST", "/v1/admin/scavenge", "").mustError(t, http.StatusInternalServerError, "corrupt")
	num := func(k string) int64 {
		t.Helper()
		n, ok := r.body[k].(json.Number)
		if !ok {
			t.Fatalf("scavenge answered %s, without %s", r.raw, k)
		}
		i, err := n.Int64()
		if err != nil {
			t.Fatalf("scavenge answered %s: %s is not a whole number", r.raw, k)
		}
		return i
	}
	if p := num("position"); p != 1 {
		t.Errorf("scavenge answered %s: want position 1, the damaged record", r.raw)
	}
	for _, k := range []string{"expired_streams", "segments", "rewritten", "gone"} {
		num(k)
	}
	if n := num("erased"); n != 1 {
		t.Errorf("scavenge answered %s: want erased 1, user-1's event in an undamaged segment", r.raw)
	}
	if freed := num("freed_bytes"); freed <= 0 || freed != num("bytes_before")-num("bytes_after") {
		t.Errorf("scavenge answered %s: want freed_bytes > 0 = bytes_before - bytes_after, the erased data", r.raw)
	}
	if q, ok := r.body["quarantines_removed"].([]any); !ok || len(q) != 0 {
		t.Errorf("scavenge answered %s: want quarantines_removed, an empty list", r.raw)
	}
}
