package pm_test

import (
	"testing"

	"github.com/pmd-dev/pmd/pm"
)

func TestOwnersOwner(t *testing.T) {
	o := pm.NewOwners([]string{"Order", "Ship-2"}, []string{"mail"})
	tests := []struct {
		stream     string
		kind, name string
	}{
		{"Order$1", "process manager", "Order"},
		{"Order$", "process manager", "Order"},
		{"Order$a$b", "process manager", "Order"},
		{"Order.checkpoint", "process manager", "Order"},
		{"Order.deliveries$1", "process manager", "Order"},
		{"Order.removed$1", "process manager", "Order"},
		{"Order.snapshots$1", "process manager", "Order"},
		{"Ship-2$x", "process manager", "Ship-2"},
		{"mail.subscription", "subscription", "mail"},
		// Not owned: other names, near misses, other kinds.
		{"Orders$1", "", ""},
		{"Orde$1", "", ""},
		{"order$1", "", ""},
		{"Order", "", ""},
		{"Order-1", "", ""},
		{"Order.checkpoint2", "", ""},
		{"Order.deliveries", "", ""},
		{"Order.other$1", "", ""},
		{"Order.subscription", "", ""},
		{"mail.checkpoint", "", ""},
		{"mail$1", "", ""},
		{"mails.subscription", "", ""},
		{"Other$1", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		kind, name, ok := o.Owner(tt.stream)
		if ok != (tt.kind != "") || kind != tt.kind || name != tt.name {
			t.Errorf("Owner(%q) = %q, %q, %v; want %q, %q", tt.stream, kind, name, ok, tt.kind, tt.name)
		}
	}
	var none *pm.Owners
	if _, _, ok := none.Owner("Order$1"); ok {
		t.Error("a nil Owners owns Order$1")
	}
}
