package config

import (
	"errors"
	"testing"
)

// TestMaxAttemptsOutOfRangeIsOneProblem: a max_attempts too large for an integer is
// reported once, as out of range; it was also reported as "must be at least 1, got
// 100000000000", which contradicts the value it names.
func TestMaxAttemptsOutOfRangeIsOneProblem(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"process manager", "processes:\n  - {name: M, correlate_by: id, handles: [A], issue: {type: C}, deliver: {webhook: http://x/, max_attempts: 100000000000}}\n",
			`pmd.yaml:2:109: process manager "M": deliver: max_attempts: "100000000000" is not an integer between -2147483648 and 2147483647`},
		{"subscription", "subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://x/, max_attempts: 100000000000}}\n",
			`pmd.yaml:2:71: subscription "a": deliver: max_attempts: "100000000000" is not an integer between -2147483648 and 2147483647`},
		{"not an integer", "subscriptions:\n  - {name: a, types: [A], deliver: {webhook: http://x/, max_attempts: many}}\n",
			`pmd.yaml:2:71: subscription "a": deliver: max_attempts must be an integer, got "many"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pmd.yaml", []byte(tt.yaml))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want config.Errors", err)
			}
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("got %d problem(s):\n%v\nwant one:\n%s", len(errs), err, tt.want)
			}
		})
	}
}
