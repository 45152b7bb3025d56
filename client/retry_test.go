package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

// TestRetryWithTheSameIDs: the package documentation tells a caller whose append got no
// answer to send it again with the same event ids; the daemon answers the original
// result, even with an expected version that no longer holds, and writes nothing. A
// link sent again fails instead, as the documentation says.
func TestRetryWithTheSameIDs(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := []pmd.EventData{
		{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000001"), Type: "Placed"},
		{ID: uuid.MustParse("0190c1d2-0000-7000-8000-000000000002"), Type: "Paid"},
	}
	first, err := c.Append(ctx, "Order$1", pmd.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Append(ctx, "Order$1", pmd.NoStream, events...)
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if again.FirstPosition != first.FirstPosition || again.LastPosition != first.LastPosition || again.Version != first.Version {
		t.Fatalf("the retry answered %+v, the append %+v", again, first)
	}
	p, err := c.ReadAll(ctx, pmd.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 {
		t.Fatalf("$all holds %d events, want the 2 appended once", len(p.Events))
	}
	// A link has no exact retry: sent again, it names the id the stream holds.
	if _, err := c.Link(ctx, "Audit", pmd.Any, events[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Link(ctx, "Audit", pmd.Any, events[0].ID); !errors.Is(err, pmd.ErrDuplicateEvent) || !strings.Contains(err.Error(), events[0].ID.String()) {
		t.Fatalf("a link sent again: %v, want duplicate_event naming %s", err, events[0].ID)
	}
}
