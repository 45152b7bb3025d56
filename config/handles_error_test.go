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

// TestParseHandlesProblemStillChecksSeen: a duplicate or refused entry in handles left
// seen.X unchecked for the whole process manager, so a typo in complete_when went
// unreported beside the handles problem. seen.X is checked against the entries that
// name a type, refused ones included (naming one of those is only the handles
// problem's echo).
func TestParseHandlesProblemStillChecksSeen(t *testing.T) {
	for _, tt := range []struct {
		name, handles, cond string
		want                []string // each error's message contains one, in order
	}{
		{"duplicate, typo", "[A, B, A]", "seen.Typo >= 1",
			[]string{`handles[2]: "A" is listed twice`, "seen.Typo: Typo is not one of the handled types"}},
		{"duplicate, no typo", "[A, B, A]", "seen.A >= 1 && seen.B >= 1",
			[]string{`handles[2]: "A" is listed twice`}},
		{"refused type, typo", `[A, "B\tC"]`, "seen.Typo >= 1",
			[]string{"handles[1]: event type", "seen.Typo: Typo is not one of the handled types"}},
		{"refused type named", `[A, "B\tC"]`, `seen["B\tC"] >= 1`,
			[]string{"handles[1]: event type"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "processes:\n  - name: M\n    correlate_by: id\n    handles: " + tt.handles +
				"\n    complete_when: '" + tt.cond + "'\n    issue: {type: C}\n"
			_, err := Parse("pmd.yaml", []byte(yaml))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != len(tt.want) {
				t.Fatalf("got %v, want %d errors: %q", err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Msg, w) {
					t.Errorf("error %d: got %q, want it to contain %q", i, errs[i].Msg, w)
				}
			}
		})
	}
}
