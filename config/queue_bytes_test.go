package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDeliverQueueBytes: deliver.queue_bytes sets pm.Options.QueueBytes, the data the
// commands queued for delivery may hold in memory per process manager: a size with a
// unit or a whole number of bytes, 0 for none (pm's negative); left out, pm's default
// (64 MiB). Any other value is refused at its place, naming the key and the value.
func TestDeliverQueueBytes(t *testing.T) {
	const head = "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n"
	for _, tc := range []struct {
		value string // "" leaves the key out
		want  int
	}{
		{"", 0},
		{"16MiB", 16 << 20},
		{"1GB", 1e9},
		{"1048576", 1 << 20},
		{`"2 MiB"`, 2 << 20},
		{"0", -1},
	} {
		t.Run(tc.value, func(t *testing.T) {
			deliver := "    deliver: {webhook: http://h/x}\n"
			if tc.value != "" {
				deliver = "    deliver: {webhook: http://h/x, queue_bytes: " + tc.value + "}\n"
			}
			cfg, err := Parse("pmd.yaml", []byte(head+deliver))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Processes[0].Options().QueueBytes; got != tc.want {
				t.Fatalf("queue_bytes %s: Options().QueueBytes = %d, want %d", tc.value, got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ value, msg string }{
		{"-1", `deliver: queue_bytes: "-1" is not a size: want 0 (hold none) or a positive whole number with an optional unit, like 64MiB or 1GB`},
		{"lots", `deliver: queue_bytes: "lots" is not a size`},
		{"1.5MiB", `deliver: queue_bytes: "1.5MiB" is not a size`},
		{"0MiB", `deliver: queue_bytes: "0MiB" is not a size: want 0 (hold none)`},
		{"99999999999999GiB", `deliver: queue_bytes: "99999999999999GiB" is too large`},
		{"[1]", `deliver: queue_bytes must be a size, like 64MiB, or a whole number of bytes, got a list`},
		{"~", `deliver: queue_bytes must be a size, like 64MiB, or a whole number of bytes, got nothing`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cfg, err := Parse("pmd.yaml", []byte(head+"    deliver: {webhook: http://h/x, queue_bytes: "+tc.value+"}\n"))
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("queue_bytes %s: got %+v, %v; want one error", tc.value, cfg, err)
			}
			if e := errs[0]; e.Line != 6 || e.Column != 49 || !strings.Contains(e.Msg, `process manager "M": `+tc.msg) {
				t.Fatalf("queue_bytes %s: got %q at %d:%d, want 6:49 with %q", tc.value, e.Msg, e.Line, e.Column, tc.msg)
			}
		})
	}
}

// TestSubscriptionQueueBytes: a subscription's deliver takes no queue_bytes, which it
// would not use (it holds no event's data while it waits): refused, saying so.
func TestSubscriptionQueueBytes(t *testing.T) {
	cfg, err := Parse("pmd.yaml", []byte("subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://x/, queue_bytes: 1MiB}}\n"))
	var errs Errors
	if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %+v, %v; want one error", cfg, err)
	}
	want := `subscription "a": deliver: queue_bytes is for a process manager's deliver: a subscription holds no event's data while it waits`
	if e := errs[0]; e.Line != 2 || !strings.Contains(e.Msg, want) {
		t.Fatalf("got %q at line %d, want line 2 with %q", e.Msg, e.Line, want)
	}
}

// TestDeliverUnknownKeyListsItsKeys: an unknown key in a deliver names the keys that
// deliver takes: a process manager's lists queue_bytes, a subscription's, which refuses
// it, does not.
func TestDeliverUnknownKeyListsItsKeys(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"process manager", "processes:\n  - {name: M, correlate_by: id, handles: [A], issue: {type: C}, deliver: {webhook: http://h/x, bogus: 1}}\n",
			`process manager "M": deliver: unknown key "bogus" (known keys: webhook, max_attempts, timeout, queue_bytes)`},
		{"subscription", "subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://h/x, bogus: 1}}\n",
			`subscription "a": deliver: unknown key "bogus" (known keys: webhook, max_attempts, timeout)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("pmd.yaml", []byte(tc.doc))
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %+v, %v; want one error", cfg, err)
			}
			if !strings.HasSuffix(errs[0].Msg, tc.want) {
				t.Fatalf("got %q, want it to end with %q", errs[0].Msg, tc.want)
			}
		})
	}
}
