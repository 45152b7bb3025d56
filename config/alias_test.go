package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseSaysAliasesAreNotRead: pmd does not expand YAML aliases (*name) nor merge keys
// (<<: *name). A file using them was refused with "handles must be a list of event types,
// got an alias" (it is one, through the alias) or "unknown key \"<<\"": the error now
// says what pmd does not read, at the alias, and what to write instead. A file that holds
// no document but a "---" or a null is empty, as the docs say, not "got nothing" at a
// line past its end.
func TestParseSaysAliasesAreNotRead(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		line, col  int
		msg        string
	}{
		{"an alias of a list", "processes:\n  - name: A\n    correlate_by: id\n    handles: &types [X, Y]\n    issue: {type: Z}\n" +
			"  - name: B\n    correlate_by: id\n    handles: *types\n    issue: {type: W}\n",
			8, 14, `process manager "B": handles must be a list of event types, got the YAML alias *types, which pmd does not expand: write the value out`},
		{"an alias of a string", "processes:\n  - name: A\n    correlate_by: &by id\n    handles: [X]\n    issue: {type: Z}\n" +
			"  - name: B\n    correlate_by: *by\n    handles: [Y]\n    issue: {type: W}\n",
			7, 19, `process manager "B": correlate_by must be a string, got the YAML alias *by, which pmd does not expand`},
		{"a merge key in a process manager", "processes:\n  - name: A\n    <<: {correlate_by: id}\n    correlate_by: id\n    handles: [X]\n    issue: {type: Z}\n",
			3, 5, `process manager "A": <<, a YAML merge key: pmd does not expand merge keys nor aliases; write the keys out`},
		{"only ---", "---\n", 1, 0, "the config file is empty"},
		{"only a null", "# nothing yet\n~\n", 1, 0, "the config file is empty"},
		{"a null, then a document", "--- ~\n---\nprocesses: []\n", 3, 1, "a second YAML document"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("pmd.yaml", []byte(tt.yaml))
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("got %+v, %v; want errors", cfg, err)
			}
			for _, e := range errs {
				if e.Line == tt.line && e.Column == tt.col && strings.Contains(e.Msg, tt.msg) {
					return
				}
			}
			t.Fatalf("got %v; want %d:%d with %q", err, tt.line, tt.col, tt.msg)
		})
	}
}
