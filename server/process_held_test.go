package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

// heldProcesses is fakeProcesses whose process "1" is held by a panic of its
// definition and has two damaged records passed over, and whose list says so of it.
type heldProcesses struct{ fakeProcesses }

const heldPanic = "pm: M$1: Apply panicked at version 4: boom"

func (h *heldProcesses) Process(ctx context.Context, name, id string) (Process, error) {
	p, err := h.fakeProcesses.Process(ctx, name, id)
	p.Damaged, p.Panic = []int64{2, 3}, heldPanic
	return p, err
}

func (h *heldProcesses) List(ctx context.Context, name, after string, limit int) ([]ProcessSummary, error) {
	list, err := h.fakeProcesses.List(ctx, name, after, limit)
	for i := range list {
		if list[i].ID == "1" {
			list[i].Damaged, list[i].Panic = 2, heldPanic
		}
	}
	return list, err
}

// TestProcessViewsSayWhatTheManagerKnows: the process route and the process list say
// which damaged records of a process stream the view passed over (damaged) and that a
// panic of the definition holds the process (panic); "damaged" is [] and "panic" ""
// when there is none. Both were left out, so a process whose only command record was
// damaged showed no command and nothing saying why, and a held process only showed as
// a manager's growing lag.
func TestProcessViewsSayWhatTheManagerKnows(t *testing.T) {
	for _, tc := range []struct {
		name        string
		processes   Processes
		damaged     string
		panicked    string
		listDamaged string
	}{
		{"held and damaged", &heldProcesses{}, `[2,3]`, heldPanic, `2`},
		{"neither", &fakeProcesses{}, `[]`, "", `0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{Processes: tc.processes})
			r := e.do("GET", "/v1/processes/M/1", nil).must(t, http.StatusOK)
			if got, _ := json.Marshal(r.body["damaged"]); string(got) != tc.damaged || r.body["panic"] != tc.panicked {
				t.Errorf("process: damaged %s, panic %v; want %s and %q", got, r.body["panic"], tc.damaged, tc.panicked)
			}
			r = e.do("GET", "/v1/processes/M?limit=2", nil).must(t, http.StatusOK)
			first := r.body["processes"].([]any)[0].(map[string]any)
			if got, _ := json.Marshal(first["damaged"]); first["id"] != "1" || string(got) != tc.listDamaged || first["panic"] != tc.panicked {
				t.Errorf("list: %v; want process 1 with damaged %s and panic %q", first, tc.listDamaged, tc.panicked)
			}
		})
	}
}
