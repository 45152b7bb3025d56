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
