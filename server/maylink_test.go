package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestMayLinkReadsAPageOfStreams: the check that a token limited to streams may link an
// event reads the event's streams a page at a time, up to the first the token reads.
// It read all of them (EventStreams): for an event linked into 2,000 streams, 2,000 link
// records and their names, held at once, for every id of a link request.
func TestMayLinkReadsAPageOfStreams(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	ctx := context.Background()
	one, err := e.store.Append(ctx, "Order$7", pmd.Any, pmd.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	many, err := e.store.Append(ctx, "Order$8", pmd.Any, pmd.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := e.store.Link(ctx, fmt.Sprintf("Other$%d", i), pmd.Any, many.IDs[0]); err != nil {
			t.Fatal(err)
		}
	}
	to := 100
	link := func(id string) uint64 {
		to++
		path := fmt.Sprintf("/v1/streams/Order%%24%d/links", to)
		return allocatedBy(func() {
			if status, body := e.call("POST", path, `{"event_ids":["`+id+`"]}`, "o-secret", nil); status != 201 {
				t.Fatalf("link: %d %s", status, body)
			}
		})
	}
	link(one.IDs[0].String()) // warm up
	base := link(one.IDs[0].String())
	// Reading the page of 100 streams with the one the token reads adds a little;
	// reading 2,000 (as before) more than doubled it.
	if took := link(many.IDs[0].String()); took > base*3/2 {
		t.Fatalf("linking an event in 2,001 streams allocated %d bytes, one in 1 stream %d: its streams were all read", took, base)
	}
}
