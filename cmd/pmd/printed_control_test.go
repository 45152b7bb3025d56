package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pmd-dev/pmd/client"
)

// TestPrintedErrorsHoldNoControlCharacters: a receiver's answer quoted in an error that
// an earlier daemon recorded as received (the daemon cleans those it records now) is
// printed by pmd parked, pmd process and pmd subscriptions with its control characters as
// spaces: an escape sequence acted on the operator's terminal, a line break broke the
// table.
func TestPrintedErrorsHoldNoControlCharacters(t *testing.T) {
	const raw = "503 Down\x1b]0;pwned\x07\x1b[2J\r\nbad"
	const shown = "503 Down ]0;pwned  [2J  bad"
	at := time.Now()
	g := &globals{addr: "127.0.0.1:1"}
	for _, tc := range []struct {
		name  string
		print func(*bytes.Buffer)
	}{
		{"pmd parked", func(b *bytes.Buffer) {
			printParked(b, g, "Mgr", defaultLimit, client.ParkedList{Parked: []client.ParkedCommand{{ProcessID: "1", ID: "c1", Error: raw}}, Total: 1})
		}},
		{"pmd process", func(b *bytes.Buffer) {
			printProcess(b, client.Process{Commands: []client.Command{{ID: "c1", Type: "T", Attempts: []client.Attempt{{Outcome: "failed", Error: raw}}}}})
		}},
		{"pmd subscriptions", func(b *bytes.Buffer) {
			printSubscriptions(b, []client.Subscription{{Name: "billing", LastError: raw}})
		}},
		{"pmd subscriptions NAME", func(b *bytes.Buffer) {
			printSubscription(b, client.SubscriptionDetail{Subscription: client.Subscription{Name: "billing", LastError: raw, LastErrorAt: &at},
				ParkedEvents: []client.ParkedEvent{{ID: "e1", Error: raw}}}, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.print(&b)
			out := b.String()
			if i := strings.IndexFunc(out, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }); i >= 0 {
				t.Fatalf("printed a control character at byte %d:\n%q", i, out)
			}
			if !strings.Contains(out, shown) {
				t.Fatalf("printed %q, want it to show the error as %q", out, shown)
			}
		})
	}
}
