package config

import (
	"errors"
	"strings"
	"testing"
)

// TestDataValueThatIsAFunctionIsRefusedAtLoad: a bare word that names one of expr's
// functions (first, date, upper, now) compiled as a value of the environment and failed
// at every decision ("cannot fetch first from config.env"), its field null, where any
// other unknown word is an error at load saying how to quote a string; a method not
// called (now().Add) was null too. Both are errors at load, at their place.
func TestDataValueThatIsAFunctionIsRefusedAtLoad(t *testing.T) {
	for _, tt := range []struct {
		value string
		col   int
		msg   string // "" when the file loads
	}{
		{"first", 32, `"first": first is a function, not a value: call it, first(...), or write "'first'" for a string`},
		{"upper", 32, `"upper": upper is a function, not a value: call it, upper(...), or write "'upper'" for a string`},
		{`"now().Add"`, 32, `"now().Add": its value is a function: call it`},
		{`"'first'"`, 0, ""},
		{`"now()"`, 0, ""},
		{`"upper(event.type)"`, 0, ""},
	} {
		t.Run(tt.value, func(t *testing.T) { checkDataValueLoad(t, tt.value, tt.col, tt.msg) })
	}
}

// TestFunctionInsideDataValueIsRefusedAtLoad: a function's name not called was refused
// only when it was the whole value (status: first); inside an object, a list or any
// other expression ({'s': first}, [first], first ?? 'x') it loaded and failed at every
// decision ("cannot fetch first from config.env"), its field null. Each is an error at
// load at the name's place, saying to call it or quote it; a call and a quoted name load.
func TestFunctionInsideDataValueIsRefusedAtLoad(t *testing.T) {
	const advice = `first is a function, not a value: call it, first(...), or write "'first'" for a string`
	for _, tt := range []struct {
		value string
		col   int    // of the name: the value is at column 32, its first character at 33
		msg   string // "" when the file loads
	}{
		{`"{'s': first}"`, 39, advice},
		{`"[first]"`, 34, advice},
		{`"first ?? 'x'"`, 33, advice},
		{`"[1, upper]"`, 37, `upper is a function, not a value: call it, upper(...), or write "'upper'" for a string`},
		{`"let f = first; [f]"`, 41, advice},
		{`"let f = now().Add; f(duration('1h'))"`, 0, ""},
		{`"first(['a', 'b'])"`, 0, ""},
		{`"{'s': first(['a'])}"`, 0, ""},
		{`"now().Add(duration('1h'))"`, 0, ""},
		{`"['first', upper('x')]"`, 0, ""},
		{`"{'s': 'first'}"`, 0, ""},
	} {
		t.Run(tt.value, func(t *testing.T) { checkDataValueLoad(t, tt.value, tt.col, tt.msg) })
	}
}

// TestFunctionInConditionIsRefusedAtLoad: complete_when and when are expressions too; a
// function's name not called in one ((first ?? 1) == 1) never held, failing at every event.
func TestFunctionInConditionIsRefusedAtLoad(t *testing.T) {
	_, err := Parse("pmd.yaml", []byte("processes:\n  - name: A\n    correlate_by: id\n    handles: [X]\n"+
		"    complete_when: \"(first ?? 1) == 1\"\n    issue: {type: Z}\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	if e := errs[0]; e.Line != 5 || e.Column != 22 || !strings.Contains(e.Msg, "first is a function, not a value") {
		t.Fatalf("got %q, want 5:22 saying first is a function", e)
	}
}

// checkDataValueLoad parses a file whose command data holds value at line 5 and checks
// that it loads (msg "") or fails with one error at 5:col holding msg.
func checkDataValueLoad(t *testing.T, value string, col int, msg string) {
	t.Helper()
	_, err := Parse("pmd.yaml", []byte("processes:\n  - name: A\n    correlate_by: id\n    handles: [X]\n"+
		"    issue: {type: Z, data: {v: "+value+"}}\n"))
	if msg == "" {
		if err != nil {
			t.Fatalf("got %v, want the file to load", err)
		}
		return
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	if e := errs[0]; e.Line != 5 || e.Column != col || !strings.Contains(e.Msg, msg) {
		t.Fatalf("got %q, want 5:%d with %q", e, col, msg)
	}
}
