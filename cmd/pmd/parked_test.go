package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
)

// TestParkRetrySkipThroughTheCLI: a receiver that is down parks the command of order
// 42 and of order 43 after their one attempt (max_attempts: 1); pmd parked lists both,
// pmd retry delivers 42 once the receiver is back, pmd skip gives up 43, and the
// timeline shows every record with its outcome.
func TestParkRetrySkipThroughTheCLI(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	delivered := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		delivered <- r.Header.Get("Idempotency-Key")
	}))
	defer receiver.Close()
	d := startInProcess(t, parseConfig(t, `
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    issue: {type: ConfirmOrder}
    deliver: {webhook: `+receiver.URL+`/commands, max_attempts: 1}
`))
	ctx := context.Background()
	for _, order := range []string{"42", "43"} {
		for _, typ := range []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"} {
			if _, err := d.store.Append(ctx, "facts", pmd.Any, pmd.EventData{Type: typ, Data: map[string]any{"order_id": order}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := d.procs.managers[0].m
	if err := m.WaitIdle(ctx); err != nil { // parked commands leave the manager idle
		t.Fatal(err)
	}
	addr := "--addr=" + d.addr
	c := d.client(t)
	commandOf := func(id string) client.Command {
		t.Helper()
		p, err := c.Process(ctx, "CateringMatch", id)
		if err != nil || len(p.Commands) != 1 {
			t.Fatalf("process %s: %+v, %v", id, p, err)
		}
		return p.Commands[0]
	}
	c42, c43 := commandOf("42"), commandOf("43")
	if c42.Status != "parked" || c43.Status != "parked" {
		t.Fatalf("statuses %s and %s, want parked", c42.Status, c43.Status)
	}

	code, out, errOut := runPMD(t, ctx, "parked", addr, "CateringMatch")
	if code != exitOK || !strings.Contains(out, "42  ") || !strings.Contains(out, c42.ID) || !strings.Contains(out, c43.ID) ||
		!strings.Contains(out, "503") || !strings.Contains(out, "to deliver one again: pmd retry CateringMatch 4") ||
		!strings.Contains(out, " --addr "+d.addr+" (or skip") { // the same daemon: the --addr given is repeated
		t.Fatalf("parked: exit %d:\n%s%s", code, out, errOut)
	}

	down.Store(false)
	code, out, errOut = runPMD(t, ctx, "retry", addr, "CateringMatch", "42", c42.ID)
	if code != exitOK || !strings.Contains(out, "queued again") {
		t.Fatalf("retry: exit %d: %s%s", code, out, errOut)
	}
	select {
	case key := <-delivered:
		if key != c42.ID {
			t.Fatalf("delivered %s, want %s", key, c42.ID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retried command was not delivered within 30s")
	}
	code, out, errOut = runPMD(t, ctx, "skip", addr, "CateringMatch", "43", c43.ID)
	if code != exitOK || !strings.Contains(out, "skipped") {
		t.Fatalf("skip: exit %d: %s%s", code, out, errOut)
	}
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	outcomes := func(cmd client.Command) string {
		var s []string
		for _, a := range cmd.Attempts {
			s = append(s, a.Outcome)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		id, status, outcomes string
	}{
		{"42", "delivered", "failed,parked,retried,delivered"},
		{"43", "skipped", "failed,parked,skipped"},
	}
	for _, tt := range tests {
		cmd := commandOf(tt.id)
		if cmd.Status != tt.status || outcomes(cmd) != tt.outcomes {
			t.Errorf("order %s: status %s, outcomes %s; want %s, %s", tt.id, cmd.Status, outcomes(cmd), tt.status, tt.outcomes)
		}
	}
	code, out, _ = runPMD(t, ctx, "process", addr, "CateringMatch", "42")
	if code != exitOK || !strings.Contains(out, "delivered  2") {
		t.Errorf("process: exit %d:\n%s", code, out)
	}
	code, out, _ = runPMD(t, ctx, "parked", addr, "CateringMatch")
	if code != exitOK || !strings.Contains(out, "no parked commands in CateringMatch") {
		t.Errorf("parked after retry and skip: exit %d:\n%s", code, out)
	}

	refusals := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a delivered command", []string{"retry", addr, "CateringMatch", "42", c42.ID}, exitFailed, "not_found"},
		{"a skipped command", []string{"skip", addr, "CateringMatch", "43", c43.ID}, exitFailed, "not_found"},
		{"another process's command", []string{"retry", addr, "CateringMatch", "43", c42.ID}, exitFailed, "not_found"},
		{"an unknown manager", []string{"parked", addr, "Nope"}, exitFailed, "not_found"},
		{"not a command id", []string{"skip", addr, "CateringMatch", "42", "c1"}, exitUsage, `COMMAND "c1" is not a UUID`},
		{"missing the command", []string{"retry", addr, "CateringMatch", "42"}, exitUsage, "want NAME ID COMMAND"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runPMD(t, ctx, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
		})
	}
	select {
	case key := <-delivered:
		t.Fatalf("%s was delivered again", key)
	default:
	}
}
