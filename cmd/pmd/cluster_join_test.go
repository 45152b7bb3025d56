package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd/cluster"
	"github.com/pmd-dev/pmd/server"
)

// TestJoinError: a join refused for the joining node's apply rules, or refused as the
// cluster stands, and a refused removal match server.ErrConflict (the API answers 409
// conflict), a removal of no member server.ErrNotFound (404), with their text unchanged;
// other errors, such as no leader, neither (503 unavailable).
func TestJoinError(t *testing.T) {
	rules := fmt.Errorf("%w: node n4's pmd applies rules up to version 1", cluster.ErrJoinRules)
	tests := []struct {
		name               string
		err                error
		conflict, notFound bool
	}{
		{"rules", rules, true, false},
		{"refused join", fmt.Errorf("%w: node n4 does not answer at 127.0.0.1:7084", cluster.ErrJoinRefused), true, false},
		{"refused removal", fmt.Errorf("%w: n1 is the cluster's last voter", cluster.ErrRemoveRefused), true, false},
		{"no such node", fmt.Errorf("%w: n9 is not a member of the cluster", cluster.ErrUnknownNode), false, true},
		{"no leader", cluster.ErrNoLeader, false, false},
		{"other", errors.New("dial tcp: connection refused"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := joinError(tt.err)
			if errors.Is(got, server.ErrConflict) != tt.conflict || errors.Is(got, server.ErrNotFound) != tt.notFound || !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
				t.Fatalf("joinError(%v) = %v, matches server.ErrConflict: %t, server.ErrNotFound: %t; want %t, %t", tt.err, got,
					errors.Is(got, server.ErrConflict), errors.Is(got, server.ErrNotFound), tt.conflict, tt.notFound)
			}
		})
	}
	if joinError(nil) != nil {
		t.Fatal("joinError(nil) is not nil")
	}
}
