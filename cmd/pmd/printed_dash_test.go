package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd/client"
)

// TestPrintedRetryReadsBackWithADash: the retry command pmd parked and pmd
// subscriptions NAME print reads back as written when a name or process id starts
// with '-' (pmd.CheckName allows -1 or -x), which the command line would otherwise
// take for a flag: run against a daemon that is not there, it fails to reach it
// (exitTrouble) rather than as a usage error.
func TestPrintedRetryReadsBackWithADash(t *testing.T) {
	t.Setenv("PMD_ADDR", "")
	t.Setenv("PMD_TLS_CA", "")
	g := &globals{addr: "127.0.0.1:1"}
	const id = "f2df04e3-044e-5d6d-b4f1-ea6d13acc836"
	parked := func(name, pid string) string {
		var b bytes.Buffer
		printParked(&b, g, name, defaultLimit, client.ParkedList{Parked: []client.ParkedCommand{{ProcessID: pid, ID: id}}, Total: 1})
		return b.String()
	}
	subscription := func(name string) string {
		var b bytes.Buffer
		printSubscription(&b, client.SubscriptionDetail{Subscription: client.Subscription{Name: name},
			ParkedEvents: []client.ParkedEvent{{ID: id}}}, g.again())
		return b.String()
	}
	for _, tc := range []struct {
		name, out, want string
	}{
		{"a process id -1", parked("Mgr", "-1"), "pmd retry --addr 127.0.0.1:1 -- Mgr -1 " + id},
		{"a manager -x", parked("-x", "42"), "pmd retry --addr 127.0.0.1:1 -- -x 42 " + id},
		{"no dash", parked("Mgr", "42"), "pmd retry Mgr 42 " + id + " --addr 127.0.0.1:1"},
		{"a subscription -x", subscription("-x"), "pmd subscriptions retry --addr 127.0.0.1:1 -- -x " + id},
		{"a subscription without", subscription("billing"), "pmd subscriptions retry billing " + id + " --addr 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.out, tc.want+" (or skip") {
				t.Fatalf("printed\n%s\nwant the command %q", tc.out, tc.want)
			}
			code, out, errOut := runPMD(t, context.Background(), shellWords(t, strings.TrimPrefix(tc.want, "pmd "))...)
			if code != exitTrouble || strings.Contains(errOut, "flag") {
				t.Fatalf("%s: exit %d, want %d (no daemon there), not a usage error:\n%s%s", tc.want, code, exitTrouble, out, errOut)
			}
		})
	}
}
