package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// The --json output of read, tail and process writes a float with no fraction as the
// API does, 2.0: it printed 2, which read back is the integer 2, and 1e20 as
// 100000000000000000000, which the daemon refused as an integer outside the 64-bit
// range when the event printed was appended again. A config file's arithmetic makes
// such floats: amount / 2 of 4 is float64(2).
func TestJSONOutputKeepsWholeFloats(t *testing.T) {
	d := startInProcess(t, parseConfig(t, `
processes:
  - name: Pricing
    correlate_by: order_id
    handles: [Priced]
    issue: {type: Charge, data: {half: state.data.amount / 2}}
`))
	ctx := minuteContext(t)
	addr := "--addr=" + d.addr
	data := map[string]any{"order_id": "1", "amount": int64(4), "whole": float64(2), "big": 1e20}
	if _, err := d.store.Append(ctx, "Order$1", pmd.NoStream, pmd.EventData{Type: "Priced", Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	const whole, big = `"whole":2.0`, `"big":100000000000000000000.0`

	code, out, errOut := runPMD(t, ctx, "read", addr, "--json", "Order$1")
	if code != exitOK || !strings.Contains(out, whole) || !strings.Contains(out, big) {
		t.Fatalf("read --json: exit %d, want %s and %s in:\n%s%s", code, whole, big, out, errOut)
	}
	// What read --json printed is appended again as it was stored.
	var page struct {
		Events []struct {
			Data json.RawMessage `json:"data"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Events) != 1 {
		t.Fatalf("read --json printed %s: %v", out, err)
	}
	code, out, errOut = runPMD(t, ctx, "append", addr, "Copy$1", "Copied", string(page.Events[0].Data))
	if code != exitOK {
		t.Fatalf("append of the data read: exit %d: %s%s", code, out, errOut)
	}
	for ev, err := range d.store.ReadStream(ctx, "Copy$1", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"whole", "big"} {
			if _, ok := ev.Data[f].(float64); !ok {
				t.Errorf("appended again, data.%s is %T %v, want a float64", f, ev.Data[f], ev.Data[f])
			}
		}
		if _, ok := ev.Data["amount"].(int64); !ok {
			t.Errorf("appended again, data.amount is %T %v, want an int64", ev.Data["amount"], ev.Data["amount"])
		}
	}

	// The table, too, shows the data as the API writes it (cut short after "big").
	code, out, errOut = runPMD(t, ctx, "read", addr, "Order$1")
	if code != exitOK || !strings.Contains(out, big) {
		t.Errorf("read: exit %d, want %s in:\n%s%s", code, big, out, errOut)
	}

	code, out, errOut = runPMD(t, ctx, "process", addr, "--json", "Pricing", "1")
	if code != exitOK {
		t.Fatalf("process --json: exit %d: %s%s", code, out, errOut)
	}
	// The event's data, the states (their data and last.data) and the command's data:
	// each float with no fraction as 2.0, none as 2.
	if bare := regexp.MustCompile(`"(whole":2|big":100000000000000000000|half":2)[,}]`).FindString(out); bare != "" ||
		!strings.Contains(out, `"data":{"half":2.0,"order_id":"1"},"position"`) || !strings.Contains(out, `"state":{"completed":true,"data":{"amount":4,`+big+`,"order_id":"1",`+whole) {
		t.Errorf("process --json printed %s; want the command's and the state's floats with a fraction in:\n%s", bare, out)
	}

	tail := runInBackground(t, ctx, "tail", addr, "--json", "--types", "Priced", "--from", "0")
	tail.out.waitFor(t, `"stream":"Order$1"`)
	if code := tail.stop(); code != exitOK {
		t.Fatalf("tail exit %d", code)
	}
	for _, want := range []string{whole, big} {
		if !strings.Contains(tail.out.String(), want) {
			t.Errorf("tail --json printed no %s:\n%s", want, tail.out.String())
		}
	}
}
