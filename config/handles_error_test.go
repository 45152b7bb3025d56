package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseBadHandlesNoSeenProblem: with handles missing or malformed, a seen.X in
// complete_when, a when, a data field or a deadline was also reported as not one of
// the handled types [], a second problem that is only the first one's echo. The one
// reported is handles'.
func TestParseBadHandlesNoSeenProblem(t *testing.T) {
	const exprs = "    complete_when: seen.A > 0\n" +
		"    issue:\n      - {type: C, when: seen.A > 1, data: {n: seen.A}}\n" +
		"    deadline: {after: 1h, issue: {type: L, data: {n: state.seen.A}}}\n"
	for _, tt := range []struct {
		name, handles string
		line          int
		msg           string
	}{
		{"handles a string", "    handles: A\n", 4, "handles must be a list of event types"},
		{"handles empty", "    handles: []\n", 4, "handles is empty"},
		{"handles with an entry not a string", "    handles: [B, [A]]\n", 4, "handles[1] must be a string"},
		{"handles missing", "", 2, "handles is missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "processes:\n  - name: M\n    correlate_by: id\n" + tt.handles + exprs
			_, err := Parse("pmd.yaml", []byte(yaml))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			if e := errs[0]; e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %q (line %d), want line %d with %q", e, e.Line, tt.line, tt.msg)
			}
		})
	}
}
