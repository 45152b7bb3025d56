package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd/cluster"
	"github.com/pmd-dev/pmd/server"
)

// TestJoinError: a join refused for the joining node's apply rules matches
// server.ErrConflict (the API answers 409 conflict) with its text unchanged; other
// errors, such as no leader, do not (503 unavailable).
func TestJoinError(t *testing.T) {
	rules := fmt.Errorf("%w: node n4's pmd applies rules up to version 1", cluster.ErrJoinRules)
	tests := []struct {
		name     string
		err      error
		conflict bool
	}{
		{"rules", rules, true},
		{"no leader", cluster.ErrNoLeader, false},
		{"other", errors.New("dial tcp: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := joinError(tt.err)
			if errors.Is(got, server.ErrConflict) != tt.conflict || !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
				t.Fatalf("joinError(%v) = %v, matches server.ErrConflict: %t, want %t", tt.err, got, errors.Is(got, server.ErrConflict), tt.conflict)
			}
		})
	}
	if joinError(nil) != nil {
		t.Fatal("joinError(nil) is not nil")
	}
}
