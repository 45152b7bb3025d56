package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestNotFoundSaysItOnce: the daemon's answer for an unknown process manager, process or
// subscription names what is missing once, without a trailing "not found" that repeats
// the error code.
func TestNotFoundSaysItOnce(t *testing.T) {
	d := startInProcess(t, parseConfig(t, cateringAndBillingYAML))
	tests := []struct {
		path, want string
	}{
		{"/v1/processes/Nosuch", `no process manager "Nosuch"`},
		{"/v1/processes/Nosuch/parked", `no process manager "Nosuch"`},
		{"/v1/processes/Nosuch/42", `no process manager "Nosuch"`},
		{"/v1/processes/CateringMatch/42", `no process "42" of CateringMatch`},
		{"/v1/subscriptions/Nosuch", `no subscription "Nosuch"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(d.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusNotFound || body.Error != "not_found" || body.Message != tt.want {
				t.Fatalf("%d %q %q, want 404 not_found %q", resp.StatusCode, body.Error, body.Message, tt.want)
			}
		})
	}
}
