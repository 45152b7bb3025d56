package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/config"
)

// TestSubscriptionsNamedLikeASubcommand: the config accepts a subscription named retry
// or skip, but cobra takes "pmd subscriptions retry" for the retry subcommand. Without
// NAME EVENT, retry and skip show the subscription of their name, as pmd subscriptions
// NAME would (--json too); with no such subscription it is the usage error it was, and
// the subcommands still retry and skip with NAME EVENT.
func TestSubscriptionsNamedLikeASubcommand(t *testing.T) {
	d := startInProcess(t, parseConfig(t, `
subscriptions:
  - name: retry
    types: [ConfirmOrder]
    deliver: {webhook: "http://127.0.0.1:1/retry"}
  - name: skip
    category: orders
    deliver: {webhook: "http://127.0.0.1:1/skip"}
`))
	ctx := context.Background()
	addr := "--addr=" + d.addr

	for _, tt := range []struct{ name, follows string }{{"retry", "types ConfirmOrder"}, {"skip", "category orders"}} {
		code, out, errOut := runPMD(t, ctx, "subscriptions", addr, tt.name)
		if code != exitOK || !strings.HasPrefix(out, tt.name+": "+tt.follows+", delivered to http://127.0.0.1:1/"+tt.name+"\n") {
			t.Errorf("pmd subscriptions %s: exit %d:\n%s%s", tt.name, code, out, errOut)
		}
		code, out, errOut = runPMD(t, ctx, "subscriptions", addr, tt.name, "--json")
		var got struct{ Name, Webhook string }
		if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Name != tt.name || got.Webhook != "http://127.0.0.1:1/"+tt.name {
			t.Errorf("pmd subscriptions %s --json: exit %d:\n%s%s", tt.name, code, out, errOut)
		}
		// The subcommand still operates on NAME EVENT, and wants both.
		code, _, errOut = runPMD(t, ctx, "subscriptions", addr, tt.name, tt.name, "0190c1d2-0000-7000-8000-000000000001")
		if code != exitFailed || !strings.Contains(errOut, "not awaiting delivery") {
			t.Errorf("pmd subscriptions %s %s EVENT: exit %d: %s", tt.name, tt.name, code, errOut)
		}
		code, _, errOut = runPMD(t, ctx, "subscriptions", addr, tt.name, tt.name)
		if code != exitUsage || !strings.Contains(errOut, "want NAME EVENT") {
			t.Errorf("pmd subscriptions %s %s: exit %d: %s", tt.name, tt.name, code, errOut)
		}
		code, _, errOut = runPMD(t, ctx, "subscriptions", addr, tt.name, "--json", tt.name, "0190c1d2-0000-7000-8000-000000000001")
		if code != exitUsage || !strings.Contains(errOut, "--json") {
			t.Errorf("pmd subscriptions %s --json NAME EVENT: exit %d: %s", tt.name, code, errOut)
		}
	}

	// A daemon with no subscription of that name: the usage error of a missing NAME EVENT.
	other := startInProcess(t, &config.Config{Path: "empty.yaml"})
	code, _, errOut := runPMD(t, ctx, "subscriptions", "--addr="+other.addr, "retry")
	if code != exitUsage || !strings.Contains(errOut, "want NAME EVENT") || !strings.Contains(errOut, "got 0 argument(s)") {
		t.Errorf("pmd subscriptions retry, no such subscription: exit %d: %s", code, errOut)
	}
}
