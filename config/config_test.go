package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadCatering(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "catering.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Processes) != 1 {
		t.Fatalf("got %d processes, want 1", len(cfg.Processes))
	}
	p := cfg.Processes[0]
	want := Process{
		Name:         "CateringMatch",
		CorrelateBy:  "order_id",
		Handles:      []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"},
		CompleteWhen: Condition{Source: "all", handles: []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"}},
		Issues:       []Command{{Type: "ConfirmOrder"}},
		Deadline:     &Deadline{After: 48 * time.Hour, Issue: Command{Type: "CancelOrder"}},
		Deliver:      &Deliver{Webhook: "http://127.0.0.1:9000/commands"},
		Line:         2,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", p, want)
	}
}

// TestLoadReportsEveryProblem checks that one bad file yields every problem, each with
// its line, in file order.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "many-errors.yaml"))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want config.Errors", err)
	}
	want := []string{
		`testdata/many-errors.yaml:2:11: process manager "Catering Match": name "Catering Match" contains ' '`,
		`testdata/many-errors.yaml:4:38: process manager "Catering Match": handles[1]: "CustomerConfirmedMenu" is listed twice`,
		`testdata/many-errors.yaml:8:14: process manager "Catering Match": deadline: after: "two days" is not a duration`,
		`testdata/many-errors.yaml:10:5: process manager "Other": correlate_by is missing`,
		`testdata/many-errors.yaml:11:14: process manager "Other": handles is empty`,
		`testdata/many-errors.yaml:13:5: process manager "Other": unknown key "colour"`,
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

func TestParseErrors(t *testing.T) {
	const valid = `
processes:
  - name: M
    correlate_by: id
    handles: [A, B]
    issue: {type: C}
`
	tests := []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"empty file", ``, 1, "the config file is empty"},
		{"empty mapping", "{}\n", 1, "defines no process manager and no subscription"},
		{"empty lists", "processes: []\nsubscriptions: []\n", 1, "defines no process manager and no subscription"},
		{"empty processes", "# nothing yet\nprocesses: []\n", 2, "defines no process manager and no subscription"},
		{"syntax", "processes:\n  - name: [\n", 2, "YAML syntax"},
		{"top level not a mapping", "- a\n", 1, "the config file must be a mapping"},
		{"unknown top-level key", "procesess: []\n", 1, `unknown key "procesess"`},
		{"processes not a list", "processes: {a: 1}\n", 1, "processes must be a list"},
		{"process not a mapping", "processes:\n  - hello\n", 2, "must be a mapping"},
		{"missing name", "processes:\n  - correlate_by: id\n    handles: [A]\n    issue: {type: C}\n", 2, "name is missing"},
		{"missing issue", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n", 2, "issue is missing"},
		{"issue without type", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {}\n", 5, "issue: type is missing"},
		{"name with $", "processes:\n  - name: M$1\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n", 2, `contains '$'`},
		{"name too long", "processes:\n  - name: " + strings.Repeat("m", 65) + "\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n", 2, "the limit is 64"},
		{"handles a string", "processes:\n  - name: M\n    correlate_by: id\n    handles: A\n    issue: {type: C}\n", 4, "must be a list of event types"},
		{"handles the command", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A, C]\n    issue: {type: C}\n", 2, "would handle the command C"},
		{"null correlate_by", "processes:\n  - name: M\n    correlate_by:\n    handles: [A]\n    issue: {type: C}\n", 3, "correlate_by must be a string, got nothing"},
		{"negative deadline", valid + "    deadline: {after: -1h, issue: {type: X}}\n", 7, "after must be positive"},
		{"deadline without issue", valid + "    deadline: {after: 1h}\n", 7, "deadline: issue is missing"},
		{"webhook not http", valid + "    deliver: {webhook: ftp://host/x}\n", 7, "not an http or https URL"},
		{"webhook without host", valid + "    deliver: {webhook: http://}\n", 7, "not an http or https URL"},
		{"cache not an integer", valid + "    cache: lots\n", 7, "cache must be an integer"},
		{"snapshot_every out of range", valid + "    snapshot_every: 99999999999\n", 7, "not an integer between"},
		{"bad expression", valid + "    complete_when: seen.A >\n", 7, "(all, any or a boolean expression over state, event and process_id)"},
		{"expression not boolean", valid + "    complete_when: events + 1\n", 7, "(all, any or a boolean expression over state, event and process_id)"},
		{"expression with unknown type", valid + "    complete_when: seen.A > 0 && seen.Q > 0\n", 7, "seen.Q: Q is not one of the handled types"},
		{"unknown name in data", valid + "    deadline: {after: 1h, issue: {type: X, data: {a: state.dta.x}}}\n", 7, "deadline: issue: data.a: \"state.dta.x\": type state has no field dta"},
		{"unknown variable in when", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue:\n      - {type: C, when: evnt.type == 'A'}\n", 6, "unknown name evnt"},
		{"issue list type twice", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue:\n      - {type: C}\n      - {type: C}\n", 7, "C is issued twice (first at line 6)"},
		{"empty issue list", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: []\n", 5, "empty list"},
		{"when in an issue mapping", "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: C, when: all}\n", 5, `unknown key "when"`},
		{"data not a mapping", valid[:len(valid)-len("    issue: {type: C}\n")] + "    issue: {type: C, data: [a]}\n", 6, "must be a mapping of field names to expressions"},
		{"max_attempts zero", valid + "    deliver: {webhook: http://h/x, max_attempts: 0}\n", 7, "max_attempts must be at least 1"},
		{"timeout not a duration", valid + "    deliver: {webhook: http://h/x, timeout: soon}\n", 7, "timeout: \"soon\" is not a duration"},
		{"retention not a mapping", valid + "    retention: 720h\n", 7, "retention must be a mapping"},
		{"retention without completed", valid + "    retention: {}\n", 7, "retention: completed is missing"},
		{"retention unknown key", valid + "    retention: {completed: 1h, open: 1h}\n", 7, `retention: unknown key "open"`},
		{"retention not a duration", valid + "    retention: {completed: a month}\n", 7, `retention: completed: "a month" is not a duration`},
		{"retention negative", valid + "    retention: {completed: -1h}\n", 7, "retention: completed must be positive, got -1h"},
		{"retention zero", valid + "    retention:\n      completed: 0s\n", 8, "retention: completed must be positive"},
		{"duplicate key", valid + "    issue: {type: D}\n", 7, `key "issue" is given twice`},
		{"duplicate process", valid + "  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n", 7, `"M" is defined twice (first at line 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("pmd.yaml", []byte(tt.yaml))
			if cfg != nil {
				t.Fatalf("a bad file yielded a config: %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("got %v, want config.Errors", err)
			}
			e := errs[0]
			if e.File != "pmd.yaml" || e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %q (line %d), want line %d with %q", e, e.Line, tt.line, tt.msg)
			}
		})
	}
}

// TestExpressionErrorsHaveLineAndColumn: an unknown name, or a seen.X whose X is not a
// handled type, in a command's data is reported at its place in the file, quoted or not,
// in an issue and in a deadline alike; a lone unknown word gets the hint to quote it.
func TestExpressionErrorsHaveLineAndColumn(t *testing.T) {
	const head = "processes:\n  - name: Shipping\n    correlate_by: order_id\n    handles: [PaymentReceived, Paid]\n    issue:\n      type: ShipOrder\n      data:\n"
	tests := []struct {
		name, field string
		line, col   int
		msg         string
	}{
		{"plain", "        address: state.data.address + adress\n", 8, 39, "unknown name adress"},
		{"double quoted", "        address: \"state.data.address + adress\"\n", 8, 40, "unknown name adress"},
		{"at the start", "        address: adress\n", 8, 18, "unknown name adress"},
		{"a bare word", "        carrier: DHL\n", 8, 18, `unknown name DHL; write "'DHL'" for a string`},
		{"state.seen typo", "        x: state.seen.Payd\n", 8, 23, "seen.Payd: Payd is not one of the handled types [PaymentReceived Paid]"},
		{"seen typo", "        x: \"1 + seen.Payd\"\n", 8, 22, "seen.Payd: Payd is not one of the handled types"},
		{"seen typo in a deadline", "        x: state.seen.Paid\n    deadline:\n      after: 1h\n      issue: {type: Late, data: {w: seen.Payd == 0}}\n", 11, 42, "seen.Payd: Payd is not one of the handled types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pmd.yaml", []byte(head+tt.field))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			e := errs[0]
			if e.Line != tt.line || e.Column != tt.col || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("got %q at %d:%d, want %q at %d:%d", e.Msg, e.Line, e.Column, tt.msg, tt.line, tt.col)
			}
		})
	}
	// A name that is not alone gets no hint: quoting it would not help.
	_, err := Parse("pmd.yaml", []byte(head+"        carrier: DHL + 1\n"))
	if err == nil || strings.Contains(err.Error(), "for a string") {
		t.Fatalf("got %v, want an unknown name without the hint", err)
	}
}

// TestDataFieldNamedLikeCorrelateByIsRefused: a command's data holds the process id under
// the correlate_by field, so a data field of that name would overwrite it. It is refused
// at load, at its place in the file, wherever the command is.
func TestDataFieldNamedLikeCorrelateByIsRefused(t *testing.T) {
	const head = "processes:\n  - name: Shipping\n    correlate_by: order_id\n    handles: [PaymentReceived]\n"
	tests := []struct {
		name, issue string
		line, col   int
		what        string
	}{
		{"issue", "    issue:\n      type: ShipOrder\n      data: {address: state.data.address, order_id: event.data.ref}\n",
			7, 43, `process manager "Shipping": issue: data: field "order_id"`},
		{"issue list", "    issue:\n      - type: ShipOrder\n        data:\n          order_id: event.data.ref\n",
			8, 11, `process manager "Shipping": issue[0]: data: field "order_id"`},
		{"deadline", "    issue: {type: ShipOrder}\n    deadline:\n      after: 1h\n      issue: {type: CancelOrder, data: {order_id: \"'x'\"}}\n",
			8, 41, `process manager "Shipping": deadline: issue: data: field "order_id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pmd.yaml")
			if err := os.WriteFile(path, []byte(head+tt.issue), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %+v, %v; want one error and no config", cfg, err)
			}
			want := fmt.Sprintf("%s:%d:%d: %s is the correlate_by field", path, tt.line, tt.col, tt.what)
			if got := errs[0].Error(); !strings.HasPrefix(got, want) {
				t.Fatalf("got\n%s\nwant\n%s…", got, want)
			}
		})
	}
	// Any other name is a field like the rest.
	cfg, err := Parse("pmd.yaml", []byte(head+"    issue: {type: ShipOrder, data: {order_ref: event.data.ref}}\n"))
	if err != nil || len(cfg.Processes[0].Issues[0].Data) != 1 {
		t.Fatalf("got %+v, %v; want the config with its field order_ref", cfg, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
}

func TestCondition(t *testing.T) {
	handles := []string{"A", "B"}
	tests := []struct {
		src  string
		st   State
		want bool
	}{
		{"all", State{Seen: map[string]int{"A": 1}}, false},
		{"all", State{Seen: map[string]int{"A": 1, "B": 2}}, true},
		{"any", State{Seen: map[string]int{}}, false},
		{"any", State{Seen: map[string]int{"B": 1}}, true},
		{"seen.A > 0 && seen.B > 0", State{Seen: map[string]int{"A": 1}}, false},
		{"seen.A > 0 && seen.B > 0", State{Seen: map[string]int{"A": 1, "B": 1}}, true},
		{"events >= 3", State{Events: 3}, true},
		{"(data.guests ?? 0) >= 10", State{Data: map[string]any{}}, false},
		{"(data.guests ?? 0) >= 10", State{Data: map[string]any{"guests": int64(12)}}, true},
		{`id == "42"`, State{ID: "42"}, true},
	}
	for _, tt := range tests {
		c := parseCondition(t, tt.src, handles)
		got, err := c.Holds(tt.st)
		if err != nil || got != tt.want {
			t.Errorf("%s over %+v = %v, %v; want %v", tt.src, tt.st, got, err, tt.want)
		}
	}
}

func TestConditionRuntimeError(t *testing.T) {
	c := parseCondition(t, "data.guests >= 10", []string{"A"})
	if _, err := c.Holds(State{Data: map[string]any{}}); !errors.Is(err, ErrCondition) {
		t.Fatalf("got %v, want ErrCondition", err)
	}
}

// parseCondition is src compiled as Parse compiles the complete_when of a process
// manager handling handles.
func parseCondition(t *testing.T, src string, handles []string) Condition {
	t.Helper()
	yaml := fmt.Sprintf("processes:\n  - name: M\n    correlate_by: id\n    handles: [%s]\n    complete_when: '%s'\n    issue: {type: Done}\n",
		strings.Join(handles, ", "), strings.ReplaceAll(src, "'", "''"))
	cfg, err := Parse("pmd.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("complete_when %s: %v", src, err)
	}
	return cfg.Processes[0].CompleteWhen
}

// FuzzParse checks that no input makes Parse panic, and that it returns either a config
// or errors that each name the file.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"catering.yaml", "many-errors.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    complete_when: seen.A > 1\n    issue: {type: C}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("got config %v and error %v: want exactly one", cfg, err)
		}
		var errs Errors
		if err != nil && (!errors.As(err, &errs) || len(errs) == 0) {
			t.Fatalf("error %v is not a non-empty config.Errors", err)
		}
		for _, e := range errs {
			if e.File != "f.yaml" || e.Msg == "" {
				t.Fatalf("error %q does not name the file or says nothing", e)
			}
		}
	})
}

// TestCacheAndSnapshots: cache and snapshot_every become pm options, and a definition's
// Version changes with what its processes' states and decisions depend on, so that
// snapshots of another definition are not trusted.
func TestCacheAndSnapshots(t *testing.T) {
	const base = "processes:\n  - name: M\n    correlate_by: id\n    handles: [A, B]\n    issue: {type: C}\n"
	parse := func(extra string) Process {
		t.Helper()
		cfg, err := Parse("pmd.yaml", []byte(base+extra))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Processes[0]
	}
	p := parse("    cache: 500\n    snapshot_every: -1\n")
	if o := p.Options(); o.CacheSize != 500 || o.SnapshotEvery != -1 {
		t.Errorf("options %+v, want CacheSize 500, SnapshotEvery -1", o)
	}
	if o := parse("    retention: {completed: 720h}\n").Options(); o.Retention.Completed != 720*time.Hour {
		t.Errorf("retention: {completed: 720h} gave options %+v", o.Retention)
	}
	if o := parse("").Options(); o.Retention.Completed != 0 {
		t.Errorf("no retention gave options %+v", o.Retention)
	}
	plain := parse("").Definition().Version
	for _, tc := range []struct {
		extra string
		same  bool
	}{
		{"    cache: 10\n", true},
		{"    retention: {completed: 1h}\n", true},
		{"    deliver: {webhook: http://127.0.0.1:9/x}\n", true},
		{"    complete_when: seen.A > 1\n", false},
		{"    deadline: {after: 1h, issue: {type: X}}\n", false},
	} {
		if got := parse(tc.extra).Definition().Version; (got == plain) != tc.same {
			t.Errorf("with %q the Version is %q, plain %q: same %v, want %v", tc.extra, got, plain, got == plain, tc.same)
		}
	}
}

// TestRetentionErrorsHaveLineAndColumn: a bad retention is reported at its value.
func TestRetentionErrorsHaveLineAndColumn(t *testing.T) {
	const file = "processes:\n  - name: M\n    correlate_by: id\n    handles: [A]\n    issue: {type: C}\n    retention:\n      completed: -720h\n"
	_, err := Parse("pmd.yaml", []byte(file))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	if got, want := errs[0].Error(), `pmd.yaml:7:18: process manager "M": retention: completed must be positive, got -720h`; !strings.HasPrefix(got, want) {
		t.Fatalf("got %s\nwant %s…", got, want)
	}
}
