package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseRefusesASecondDocument: YAML documents after the first (after "---") were
// ignored, their process managers and subscriptions with them; they are refused, at
// their line. A "---" that starts the file, or ends it with nothing after, is no
// second document.
func TestParseRefusesASecondDocument(t *testing.T) {
	const procs = "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n"
	const subs = "subscriptions:\n  - name: S\n    types: [A]\n    deliver: {webhook: http://h/x}\n"
	for _, tt := range []struct {
		name, yaml string
		line       int // of the error; 0 when the file is good
		msg        string
	}{
		{"subscriptions in a second document", procs + "---\n" + subs, 7, "a second YAML document"},
		{"an empty mapping in a second document", procs + "---\n{}\n", 7, "a second YAML document"},
		{"a third document", procs + "---\n" + subs + "---\n" + subs, 7, "a second YAML document"},
		{"a third document after an empty second", procs + "---\n---\n" + subs, 8, "a second YAML document"},
		{"a third document after a null second", procs + "--- ~\n---\n" + subs, 8, "a second YAML document"},
		{"a syntax error in a third document", procs + "---\n---\nprocesses: [\n", 8, "YAML syntax"},
		{"a syntax error in a second document", procs + "---\nprocesses: [\n", 7, "YAML syntax"},
		{"one document after ---", "---\n" + procs, 0, ""},
		{"a trailing ---", procs + "---\n", 0, ""},
		{"a trailing ...", procs + "...\n", 0, ""},
		{"two trailing ---", procs + "---\n---\n", 0, ""},
		{"a trailing null document", procs + "--- ~\n", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("pmd.yaml", []byte(tt.yaml))
			if tt.line == 0 {
				if err != nil || len(cfg.Processes) != 1 {
					t.Fatalf("got %v, %v; want the one process manager", cfg, err)
				}
				return
			}
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %+v, %v; want one error", cfg, err)
			}
			if e := errs[0]; e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %q (line %d), want line %d with %q", e, e.Line, tt.line, tt.msg)
			}
		})
	}
}
