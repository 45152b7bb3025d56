package main

import (
	"testing"

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

// TestKeepsAll: the daemon refuses retention on the process streams, deliveries, removal
// markers and checkpoint stream of the process managers of its config file, and on no other
// stream; without a config, or one without process managers, on none.
func TestKeepsAll(t *testing.T) {
	if keeps := keepsAll(nil); keeps != nil {
		t.Fatal("without a config file retention is refused")
	}
	if keeps := keepsAll(&config.Config{Subscriptions: []config.Subscription{{Name: "billing"}}}); keeps != nil {
		t.Fatal("without process managers retention is refused")
	}
	keeps := keepsAll(&config.Config{Processes: []config.Process{{Name: "Order"}}})
	for stream, want := range map[string]bool{
		"Order$1": true, "Order.removed$1": true,
		"Order.deliveries$1": true,
		"Order.checkpoint":   true, "Order.snapshots$1": false, "Orders$1": false,
	} {
		name, ok := keeps(stream)
		if ok != want || (ok && name != "Order") {
			t.Errorf("keepsAll(%q) = %q, %v; want %v", stream, name, ok, want)
		}
	}
}
