package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/server"
)

func TestRetentionEraseAndScavenge(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	for i := range 4 {
		if _, err := c.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	want := pmd.Retention{MaxAge: 720 * time.Hour, MaxCount: 2, TruncateBefore: 1}
	if err := c.SetRetention(ctx, "Order$1", want); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Retention(ctx, "Order$1"); err != nil || got != want {
		t.Fatalf("Retention = %+v, %v; want %+v", got, err, want)
	}
	page, err := c.ReadStream(ctx, "Order$1", pmd.ReadOptions{})
	if err != nil || len(page.Events) != 2 {
		t.Fatalf("a stream with max count 2 reads %d events, %v", len(page.Events), err)
	}
	if err := c.SetRetention(ctx, "$all", pmd.Retention{}); !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Fatalf("retention of $all: %v, want ErrInvalidArgument", err)
	}

	if err := c.EraseStream(ctx, "Order$1"); err != nil {
		t.Fatal(err)
	}
	page, err = c.ReadStream(ctx, "Order$1", pmd.ReadOptions{})
	if err != nil || !page.Events[0].Erased || len(page.Events[0].Data) != 0 {
		t.Fatalf("an erased stream reads %+v, %v", page.Events, err)
	}
	res, err := c.Scavenge(ctx)
	if err != nil || res.BytesAfter > res.BytesBefore {
		t.Fatalf("Scavenge = %+v, %v", res, err)
	}
}
