package main

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/config"
)

// TestStreamOwner: the daemon's Owner names the process managers and subscriptions of
// its config file, and no others; without a config nothing is owned.
func TestStreamOwner(t *testing.T) {
	if owner := streamOwner(nil); owner != nil {
		t.Fatal("without a config file a stream has an owner")
	}
	owner := streamOwner(&config.Config{
		Processes:     []config.Process{{Name: "Order"}},
		Subscriptions: []config.Subscription{{Name: "billing"}},
	})
	tests := []struct{ stream, want string }{
		{"Order$1", "process manager Order"},
		{"Order.checkpoint", "process manager Order"},
		{"Order.deliveries$1", "process manager Order"},
		{"Order.removed$1", "process manager Order"},
		{"Order.snapshots$1", "process manager Order"},
		{"billing.subscription", "subscription billing"},
		{"Orders$1", ""},
		{"Ship$1", ""},
		{"billing$1", ""},
	}
	for _, tt := range tests {
		got, ok := owner(tt.stream)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("owner(%q) = %q, %v; want %q", tt.stream, got, ok, tt.want)
		}
	}
}

// TestKeepProcessStreams: pmd serve has the store refuse retention on the process
// streams, deliveries, removal markers and checkpoint stream of the process managers of
// its config file from its start, before any manager is made (a cluster's are made on
// its leader only, once elected), and on no other stream; without a config, on none.
func TestKeepProcessStreams(t *testing.T) {
	ctx := context.Background()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := keepProcessStreams(s, nil); err != nil {
		t.Fatal(err)
	}
	if err := keepProcessStreams(s, &config.Config{Processes: []config.Process{{Name: "Order"}}, Subscriptions: []config.Subscription{{Name: "billing"}}}); err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]bool{
		"Order$1": true, "Order.removed$1": true, "Order.deliveries$1": true, "Order.checkpoint": true,
		"Order.snapshots$1": false, "Orders$1": false, "billing.subscription": false,
	} {
		err := s.SetRetention(ctx, stream, pmd.Retention{MaxCount: 1})
		var kw *pmd.KeptWholeError
		if kept := errors.As(err, &kw) && kw.Owner == "process manager Order"; kept != want || (!want && err != nil) {
			t.Errorf("SetRetention(%q) = %v; want refused %v", stream, err, want)
		}
	}
}
