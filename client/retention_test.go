package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
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

// TestScavengeThatMetDamage: a scavenge that met damage returns what it did with the
// daemon's corrupt error, as the daemon answers 500 corrupt with the scavenge's fields
// beside the error's (an older daemon's error alone gives a zero result). The result
// was read from a 200 only: the bytes the other segments freed and the quarantines
// removed were lost.
func TestScavengeThatMetDamage(t *testing.T) {
	const damage = `{"error":"corrupt","message":"damaged record at position 1: pmd: scavenge: 1 damaged segment(s) kept as they were","position":1`
	for _, tt := range []struct {
		name, body string
		want       client.ScavengeResult
	}{
		{"with what it did", damage + `,"expired_streams":2,"segments":3,"rewritten":1,"gone":1,"dead_kept":2,"erased":1,"bytes_before":4667,"bytes_after":4649,"freed_bytes":18,"quarantines_removed":["/data/quarantine-20261130T015100Z"]}`,
			client.ScavengeResult{ExpiredStreams: 2, Segments: 3, Rewritten: 1, Gone: 1, DeadKept: 2, Erased: 1, BytesBefore: 4667, BytesAfter: 4649, FreedBytes: 18,
				QuarantinesRemoved: []string{"/data/quarantine-20261130T015100Z"}}},
		{"the error alone", damage + "}", client.ScavengeResult{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/v1/admin/scavenge" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := newClient(t, ts.URL).Scavenge(ctx)
			var api *client.Error
			if !errors.Is(err, pmd.ErrCorrupt) || !errors.As(err, &api) || api.Status != http.StatusInternalServerError || api.Position != 1 {
				t.Fatalf("got %#v, want the daemon's corrupt error naming position 1", err)
			}
			if !reflect.DeepEqual(res, tt.want) {
				t.Fatalf("got %+v, want %+v", res, tt.want)
			}
		})
	}
}
