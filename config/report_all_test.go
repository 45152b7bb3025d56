package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseReportsEveryProblemOfAManager: a process manager's complete_when, and its
// issuing a type it handles, are checked whatever else is wrong with it: each problem
// is reported at once, not after the ones before it are fixed.
func TestParseReportsEveryProblemOfAManager(t *testing.T) {
	const yaml = `processes:
  - name: A
    correlate_by: order_id
    handles: [X, Y]
    complete_when: state + 1
    issue: {type: X, data: {n: state + 1}}
    deliver: {webhook: "http://h/x", max_attempts: 0}
  - name: B
    correlate_by: order_id
    handles: [X, Y]
    complete_when: seen.Q > 0
    issue:
      - {type: Z, when: "state ++ 1"}
`
	_, err := Parse("pmd.yaml", []byte(yaml))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config.Errors", err)
	}
	want := []string{
		`pmd.yaml:2:5: process manager "A": it would handle the command X it issues`,
		`pmd.yaml:5:26: process manager "A": complete_when: "state + 1": `,
		`pmd.yaml:6:38: process manager "A": issue: data.n: "state + 1": invalid operation: + (mismatched types state and int)`,
		`pmd.yaml:7:52: process manager "A": deliver: max_attempts must be at least 1, got 0`,
		`pmd.yaml:11:25: process manager "B": complete_when: "seen.Q > 0": seen.Q: Q is not one of the handled types [X Y]`,
		`pmd.yaml:13:32: process manager "B": issue[0]: when: "state ++ 1": invalid operation: + (mismatched types state and int)`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d:\n got %s\nwant %s…", i, errs[i], w)
		}
	}
}

// TestConditionErrorsReadLikeDataErrors: a complete_when or a when that does not
// compile is reported as a command's data field is: on one line, at its place in the
// file, naming the expression's values as the file does (state, event), not the Go
// types behind them.
func TestConditionErrorsReadLikeDataErrors(t *testing.T) {
	const head = "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n"
	for _, tt := range []struct {
		name, yaml string
		line, col  int
		msg        string
	}{
		{"complete_when", head + "    complete_when: state.dta > 0\n    issue: {type: C}\n", 5, 26,
			`complete_when: "state.dta > 0": type state has no field dta (all, any or a boolean expression over state, event and process_id)`},
		{"complete_when not boolean", head + "    complete_when: events + 1\n    issue: {type: C}\n", 5, 20,
			`complete_when: "events + 1": expected bool, but got int (all, any or a boolean expression over state, event and process_id)`},
		{"when", head + "    issue:\n      - {type: C, when: \"event.typ == 'A'\"}\n", 6, 32,
			`issue[0]: when: "event.typ == 'A'": type event has no field typ (all, any or a boolean expression over state, event and process_id)`},
		{"data", head + "    issue: {type: C, data: {a: event.typ}}\n", 5, 38,
			`issue: data.a: "event.typ": type event has no field typ (an expression over state, event and process_id)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pmd.yaml", []byte(tt.yaml))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			e := errs[0]
			if e.Line != tt.line || e.Column != tt.col || !strings.HasSuffix(e.Msg, tt.msg) || strings.Contains(e.Msg, "\n") {
				t.Fatalf("got %q at %d:%d, want one line at %d:%d ending %q", e.Msg, e.Line, e.Column, tt.line, tt.col, tt.msg)
			}
		})
	}
}
