package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestExpressionErrorsAreCounted: a complete_when that fails on a fact (a string
// compared with a number) leaves the process open, and the failure shows in
// pmd_pm_expression_errors_total of its process manager.
func TestExpressionErrorsAreCounted(t *testing.T) {
	d := startInProcess(t, parseConfig(t, `
processes:
  - name: Party
    correlate_by: order_id
    handles: [Booked]
    complete_when: data.guests >= 10
    issue: {type: OrderCake}
  - name: Quiet
    correlate_by: order_id
    handles: [Booked]
    issue: {type: Nothing}
`))
	ctx := minuteContext(t)
	if _, err := d.store.Append(ctx, "Booking$1", pmd.Any, pmd.EventData{Type: "Booked", Data: map[string]any{"order_id": "1", "guests": "12"}}); err != nil {
		t.Fatal(err)
	}
	for _, mg := range d.procs.managers {
		if err := mg.m.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if c := d.procs.managers[0].m.Counts(); c.Open != 1 || c.Completed != 0 {
		t.Fatalf("Party counts %+v, want one open process", c)
	}
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	count := func(pm string) int {
		m := regexp.MustCompile(`pmd_pm_expression_errors_total\{pm="` + pm + `"\} (\d+)\n`).FindSubmatch(metrics)
		if m == nil {
			t.Fatalf("metrics lack pmd_pm_expression_errors_total of %s:\n%s", pm, metrics)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	if n := count("Party"); n < 1 {
		t.Errorf("pmd_pm_expression_errors_total of Party = %d, want at least 1", n)
	}
	if n := count("Quiet"); n != 0 {
		t.Errorf("pmd_pm_expression_errors_total of Quiet = %d, want 0", n)
	}
}
