package client_test

import (
	"context"
	"math"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// Numbers keep their Go type through the daemon as through the embedded store: a float
// with no fraction stays a float64 whichever wrote it and whichever reads it. The
// client wrote float64(2) as 2, stored as the integer 2, float64(1e20) as an integer
// the daemon refused, and read a stored float64(2) back as int64(2).
func TestWholeFloatsKeepTheirType(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	data := func() map[string]any {
		return map[string]any{
			"whole": float64(2), "neg_zero": math.Copysign(0, -1), "big": 1e20,
			"half": 2.5, "int": int64(2), "list": []any{float64(4), int64(4)},
			"nested": map[string]any{"amount": float64(5)},
		}
	}
	wantFloat := []string{"whole", "neg_zero", "big", "half"}
	check := func(t *testing.T, how string, got map[string]any) {
		t.Helper()
		for _, f := range wantFloat {
			if _, ok := got[f].(float64); !ok {
				t.Errorf("%s: data.%s is %T %v, want a float64", how, f, got[f], got[f])
			}
		}
		if v, _ := got["neg_zero"].(float64); !math.Signbit(v) {
			t.Errorf("%s: data.neg_zero is %v, want -0", how, got["neg_zero"])
		}
		if _, ok := got["int"].(int64); !ok {
			t.Errorf("%s: data.int is %T %v, want an int64", how, got["int"], got["int"])
		}
		list, _ := got["list"].([]any)
		if len(list) != 2 {
			t.Fatalf("%s: data.list is %v", how, got["list"])
		}
		if _, ok := list[0].(float64); !ok {
			t.Errorf("%s: data.list[0] is %T, want a float64", how, list[0])
		}
		if _, ok := list[1].(int64); !ok {
			t.Errorf("%s: data.list[1] is %T, want an int64", how, list[1])
		}
		if _, ok := got["nested"].(map[string]any)["amount"].(float64); !ok {
			t.Errorf("%s: data.nested.amount is %T, want a float64", how, got["nested"].(map[string]any)["amount"])
		}
	}

	tests := []struct {
		name  string
		write func(stream string, e pmd.EventData) error
	}{
		{"embedded store", func(stream string, e pmd.EventData) error {
			_, err := d.store.Append(ctx, stream, pmd.NoStream, e)
			return err
		}},
		{"client", func(stream string, e pmd.EventData) error {
			_, err := c.Append(ctx, stream, pmd.NoStream, e)
			return err
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := "Priced$" + string(rune('a'+i))
			sent := data()
			if err := tt.write(stream, pmd.EventData{Type: "Priced", Data: sent, Metadata: map[string]any{"score": float64(6)}}); err != nil {
				t.Fatal(err)
			}
			if _, ok := sent["whole"].(float64); !ok {
				t.Fatalf("the caller's data was changed: whole is %T", sent["whole"])
			}
			for ev, err := range d.store.ReadStream(ctx, stream, pmd.ReadOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				check(t, "read by the store", ev.Data)
			}
			page, err := c.ReadStream(ctx, stream, pmd.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "read by the client", page.Events[0].Data)
			if _, ok := page.Events[0].Metadata["score"].(float64); !ok {
				t.Errorf("read by the client: metadata.score is %T, want a float64", page.Events[0].Metadata["score"])
			}
			sub, cancel := context.WithCancel(ctx)
			defer cancel()
			for ev, err := range c.Subscribe(sub, client.SubscribeOptions{Stream: stream}) {
				if err != nil {
					t.Fatal(err)
				}
				check(t, "followed by the client", ev.Data)
				break
			}
		})
	}
}
