package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestUndecodableLinkedEventNamesTheStreamRead: an event linked into o whose data does not
// decode, read through o, is named by its version in o and by o, as the store names it; the
// server named the stream it was appended to with o's version.
func TestUndecodableLinkedEventNamesTheStreamRead(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quiet()}
	store, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const marker = "MARK-UNDECODABLE"
	var id uuid.UUID
	for i, d := range []any{"fine", []any{marker, 1}} {
		ed := pmd.EventData{Type: "E", Data: map[string]any{"l": d}}
		if i == 1 {
			id = uuid.New()
			ed.ID = id
		}
		if _, err := store.Append(ctx, "s", pmd.Any, ed); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := store.Append(ctx, "o", pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"x": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Link(ctx, "o", pmd.Any, id); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	spoilData(t, dir, marker)
	if store, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	// What the store itself says (ReadStream, decoding).
	for _, err := range store.ReadStream(ctx, "o", pmd.ReadOptions{From: 3}) {
		t.Logf("store: %v", err)
		break
	}
	ts := httptest.NewServer(New(store, Options{Logger: quiet()}))
	t.Cleanup(func() { ts.Close(); store.Close() })
	e := &env{t: t, store: store, ts: ts}
	bad := e.do("GET", "/v1/streams/o?from=3", nil).mustError(t, http.StatusInternalServerError, "corrupt")
	t.Logf("server: %s", bad.raw)
	want := `(version 3 of stream "o")`
	if !strings.Contains(fmt.Sprint(bad.body["message"]), want) {
		t.Errorf("read of o from the linked undecodable event: %s, want %s", bad.raw, want)
	}
}
