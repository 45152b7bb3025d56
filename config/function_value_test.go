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
		t.Run(tt.value, func(t *testing.T) {
			_, err := Parse("pmd.yaml", []byte("processes:\n  - name: A\n    correlate_by: id\n    handles: [X]\n"+
				"    issue: {type: Z, data: {v: "+tt.value+"}}\n"))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("got %v, want the file to load", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			if e := errs[0]; e.Line != 5 || e.Column != tt.col || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %q, want 5:%d with %q", e, tt.col, tt.msg)
			}
		})
	}
}
