package main

import (
	"context"
	"strings"
	"testing"
)

// TestHelpDoesNotShowTheToken: PMD_TOKEN is the --token flag's default, and the help
// prints a flag's default: it must not print the token there, where a terminal
// recording or a CI log would keep it.
func TestHelpDoesNotShowTheToken(t *testing.T) {
	const secret = "s3cret-from-the-environment"
	t.Setenv("PMD_TOKEN", secret)
	for _, args := range [][]string{
		{"--help"},
		{"read", "--help"},
		{"tail", "--help"},
		{"read", "--no-such-flag"},
		{},
	} {
		t.Run(strings.Join(append([]string{"pmd"}, args...), " "), func(t *testing.T) {
			_, out, errOut := runPMD(t, context.Background(), args...)
			if strings.Contains(out+errOut, secret) {
				t.Fatalf("the output shows the token of PMD_TOKEN:\n%s%s", out, errOut)
			}
			if len(args) > 0 && args[len(args)-1] == "--help" && !strings.Contains(out+errOut, "--token") {
				t.Fatalf("the help does not name --token:\n%s%s", out, errOut)
			}
		})
	}
}
