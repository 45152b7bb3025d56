package main

import (
	"encoding/json"
	"testing"
	"time"
)

// TestTallyPrints: a run's result is printed as JSON whatever it counted. With no event
// counted (writers stalled for the whole run), the CPU per event was +Inf (or NaN with no
// CPU time either), which JSON cannot hold: appendbench printed nothing, and scale
// appendcmp failed to read its output.
func TestTallyPrints(t *testing.T) {
	for _, tc := range []struct {
		name    string
		counted int64
		cpu     time.Duration
		wantCPU float64
	}{
		{"events", 1000, 2 * time.Second, 2000},
		{"none counted", 0, 2 * time.Second, 0},
		{"none counted, no CPU", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := json.Marshal(tally(16, true, time.Second, tc.counted, 10, tc.cpu))
			if err != nil {
				t.Fatalf("result of a run that counted %d events in %s of CPU: %v", tc.counted, tc.cpu, err)
			}
			var got result
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got.Events != tc.counted || got.CPUPerEvent != tc.wantCPU {
				t.Fatalf("printed %s: want %d events, %g µs of CPU per event", out, tc.counted, tc.wantCPU)
			}
		})
	}
}
