package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestTailOfAStreamPrintsVersions: pmd tail --stream S takes --from as a version of S,
// so each line it prints starts with the event's version in S (then its position):
// the number a user resumes from. Printing only the log position, as it did, made
// "--from <the last number shown + 1>" skip events, positions being larger.
func TestTailOfAStreamPrintsVersions(t *testing.T) {
	d := startInProcess(t, nil)
	ctx := context.Background()
	// Positions 1 to 6; s holds E2, E4 and E5 at versions 0 to 2.
	for i, stream := range []string{"other", "other", "s", "other", "s", "s"} {
		if _, err := d.store.Append(ctx, stream, pmd.Any, pmd.EventData{Type: fmt.Sprintf("E%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		args []string
		want []string // the lines, by their first fields
	}{
		{[]string{"--stream", "s", "--from", "1"}, []string{"1  5  ", "2  6  "}},
		{[]string{"--from", "5"}, []string{"5  ", "6  "}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			tail := runInBackground(t, ctx, append([]string{"tail", "--addr", d.addr}, tt.args...)...)
			tail.out.waitFor(t, "E5")
			if code := tail.stop(); code != exitOK {
				t.Fatalf("tail exit %d", code)
			}
			lines := strings.Split(strings.TrimSuffix(tail.out.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(lines), len(tt.want), tail.out.String())
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d is %q, want it to start with %q", i, lines[i], want)
				}
			}
		})
	}
}
