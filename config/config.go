package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/bytesize"
	"github.com/pmd-dev/pmd/internal/redact"
	"gopkg.in/yaml.v3"
)

// Config is a checked config file.
type Config struct {
	// Path is the file it was read from, as given to Load or Parse.
	Path      string
	Processes []Process
	// Subscriptions are the subscriptions with a server-side position.
	Subscriptions []Subscription
}

// Process is one process manager of the config file.
type Process struct {
	// Name names the process manager; process streams are "<Name>$<process id>".
	Name string
	// CorrelateBy is the data field of a handled event that holds the process id.
	CorrelateBy string
	// Handles are the event types the process manager handles.
	Handles []string
	// CompleteWhen says when the process is complete: it then issues the commands of
	// Issues that have no When, and its deadline no longer applies.
	CompleteWhen Condition
	// Issues are the commands the process issues, each once per process: one for an
	// issue mapping, one per entry for an issue list.
	Issues []Command
	// IssueList is set when issue was a list: the commands' keys are then their types
	// (KeyComplete for the single command of an issue mapping).
	IssueList bool
	// Deadline, if set, expires a process that is not complete in time.
	Deadline *Deadline
	// Deliver, if set, says where commands are delivered.
	Deliver *Deliver
	// Cache is how many processes' states are kept in memory (pm.Options.CacheSize):
	// 0 for pm's default, negative for none.
	Cache int
	// SnapshotEvery is how many events a process grows by between snapshots of its
	// state (pm.Options.SnapshotEvery): 0 for pm's default, negative for none.
	SnapshotEvery int
	// Retention says how long done processes are kept (pm.Options.Retention); the
	// zero value keeps them for ever.
	Retention Retention
	// Line is where the process is defined in the file.
	Line int
}

// Command is a command a process issues. Its data holds the process id under the
// process manager's CorrelateBy field, and the fields of Data.
type Command struct {
	Type string
	// When is when an entry of an issue list is issued; nil means once the process is
	// complete (CompleteWhen).
	When *Condition
	// Data are the command's data fields, in file order, each an expression over
	// state, event and process_id evaluated when the command is decided.
	Data []Field
}

// Field is a data field of a command.
type Field struct {
	Name  string
	Value *Expression
}

// Deadline issues Issue if the process is not complete After its first handled event.
type Deadline struct {
	After time.Duration
	Issue Command
}

// Retention says when processes are removed.
type Retention struct {
	// Completed is how long after it is done a process is removed: its process,
	// deliveries and snapshot streams are deleted, and a late event of it starts
	// nothing (pm.Retention.Completed). 0 keeps done processes.
	Completed time.Duration
}

// Deliver says where commands are delivered, at least once.
type Deliver struct {
	// Webhook is an http or https URL that each command is POSTed to as JSON.
	Webhook string
	// MaxAttempts is how many attempts in a row may fail before a command is parked
	// (pm.Options.MaxAttempts): 0 for pm's default.
	MaxAttempts int
	// Timeout is how long one attempt may take; 0 for the daemon's default.
	Timeout time.Duration
	// QueueBytes bounds the data the commands queued for delivery hold in memory
	// (pm.Options.QueueBytes): 0 for pm's default (64 MiB), negative for none (the
	// file's queue_bytes: 0).
	QueueBytes int
}

// Error is one problem in a config file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when the problem has no place (an unreadable file)
	Column int // 1-based; 0 when unknown
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
}

// Errors is every problem found in a config file, in file order.
type Errors []*Error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads and checks the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config file: %v", err)}}
	}
	return Parse(path, data)
}

// Parse checks the config file contents data; name is used in errors. The error, if
// any, is an Errors.
func Parse(name string, data []byte) (*Config, error) {
	p := &parser{file: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, Errors{p.syntaxError(err)}
	}
	cfg := &Config{Path: name}
	empty := Errors{{File: name, Line: 1, Msg: "the config file is empty: it needs a processes or a subscriptions list"}}
	if len(doc.Content) == 0 {
		return nil, empty
	}
	// One document: what another one (after ---) defines would be ignored. A "---"
	// with nothing (or null) after it is no second document, but one further on is.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errors{p.syntaxError(err)}
		}
		if len(more.Content) > 0 && more.Content[0].Tag != "!!null" {
			return nil, Errors{{File: name, Line: more.Content[0].Line, Column: more.Content[0].Column,
				Msg: "a second YAML document (after ---): pmd reads one; put processes and subscriptions in the one document"}}
		}
	}
	if doc.Content[0].Tag == "!!null" {
		return nil, empty // a "---" or a null alone defines as much as nothing
	}
	root := p.mapping(doc.Content[0], "the config file", nil, "processes", "subscriptions")
	if list, ok := root["processes"]; ok {
		if list.Kind != yaml.SequenceNode {
			p.errorf(list, "processes must be a list of process managers, got %s", kindName(list))
		} else {
			names := map[string]int{}
			for i, n := range list.Content {
				proc, ok := p.process(i, n)
				if !ok {
					continue
				}
				if line, dup := names[proc.Name]; dup {
					p.errorf(n, "process manager %q is defined twice (first at line %d)", proc.Name, line)
					continue
				}
				names[proc.Name] = proc.Line
				cfg.Processes = append(cfg.Processes, proc)
			}
		}
	}
	if list, ok := root["subscriptions"]; ok {
		cfg.Subscriptions = p.subscriptions(list, cfg.Processes)
	}
	if len(p.errs) == 0 && len(cfg.Processes) == 0 && len(cfg.Subscriptions) == 0 {
		// As good as no --config at all, and so most likely a mistake: a list left empty
		// or under a misspelt parent, the wrong file.
		p.errorf(doc.Content[0], "the config file defines no process manager and no subscription: give at least one, or serve without --config")
	}
	if len(p.errs) > 0 {
		for _, e := range p.errs {
			e.Msg = goTypes.Replace(e.Msg)
		}
		slices.SortStableFunc(p.errs, func(a, b *Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, p.errs
	}
	return cfg, nil
}

// goTypes are the Go types of expressions' values, as the expression compiler's messages
// name them, and the names the file knows them by.
var goTypes = strings.NewReplacer("config.stateView", "state", "config.eventView", "event")

type parser struct {
	file string
	errs Errors
}

func (p *parser) errorf(n *yaml.Node, format string, a ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, a...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML syntax error into an *Error with its line.
func (p *parser) syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: p.file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &Error{File: p.file, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return fmt.Sprintf("the YAML alias *%s, which pmd does not expand: write the value out", n.Value)
	default:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
}

// mapping checks that n is a mapping with only the keys allowed, each once, and none of
// required missing; it returns the value of each key present.
func (p *parser) mapping(n *yaml.Node, what string, required []string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Tag == "!!merge":
			p.errorf(k, "%s: %s, a YAML merge key: pmd does not expand merge keys nor aliases; write the keys out", what, k.Value)
		case !slices.Contains(allowed, k.Value):
			p.errorf(k, "%s: unknown key %q (known keys: %s)", what, k.Value, strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.errorf(k, "%s: key %q is given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	for _, key := range required {
		if _, ok := out[key]; !ok {
			p.errorf(n, "%s: %s is missing", what, key)
		}
	}
	return out
}

// str returns the string scalar n; ok is false (and an error recorded) otherwise.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a string, got %s", what, kindName(n))
		return "", false
	}
	if n.Value == "" {
		p.errorf(n, "%s must not be empty", what)
		return "", false
	}
	return n.Value, true
}

func (p *parser) process(i int, n *yaml.Node) (Process, bool) {
	what := fmt.Sprintf("process manager %d", i+1)
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode {
				what = fmt.Sprintf("process manager %q", n.Content[j+1].Value)
			}
		}
	}
	before := len(p.errs)
	m := p.mapping(n, what, []string{"name", "correlate_by", "handles", "issue"},
		"name", "correlate_by", "handles", "complete_when", "issue", "deadline", "deliver", "cache", "snapshot_every", "retention")
	proc := Process{Line: n.Line}
	if v, ok := m["name"]; ok {
		if s, ok := p.str(v, what+": name"); ok {
			if reason := checkManagerName(s); reason != "" {
				p.errorf(v, "%s: name %s", what, reason)
			}
			proc.Name = s
		}
	}
	if v, ok := m["correlate_by"]; ok {
		proc.CorrelateBy, _ = p.str(v, what+": correlate_by")
	}
	// known is what an expression's seen.X may name: every type handles lists, those it
	// refuses (listed twice, not a valid name) included, as a seen.X naming one would
	// only echo that problem; nil (not checked) when handles is missing, not a list,
	// empty or has an entry that is not a string, where any seen.X might.
	var known []string
	if v, ok := m["handles"]; ok {
		proc.Handles = p.types(v, what+": handles", "the process manager would never run")
		known = listed(v)
	}
	if v, ok := m["issue"]; ok {
		proc.Issues, proc.IssueList = p.issues(v, what+": issue", known, proc.CorrelateBy)
	}
	if v, ok := m["deadline"]; ok {
		proc.Deadline = p.deadline(v, what+": deadline", known, proc.CorrelateBy)
	}
	if v, ok := m["deliver"]; ok {
		proc.Deliver = p.deliver(v, what+": deliver", true)
	}
	if v, ok := m["cache"]; ok {
		proc.Cache, _ = p.integer(v, what+": cache")
	}
	if v, ok := m["snapshot_every"]; ok {
		proc.SnapshotEvery, _ = p.integer(v, what+": snapshot_every")
	}
	if v, ok := m["retention"]; ok {
		proc.Retention = p.retention(v, what+": retention")
	}
	// Every field is checked whatever is wrong with the others: a file's problems are
	// all reported at once.
	proc.CompleteWhen = Condition{Source: "all", handles: proc.Handles}
	if v, ok := m["complete_when"]; ok {
		proc.CompleteWhen, _ = p.condition(v, what+": complete_when", known)
	}
	cmds := slices.Clone(proc.Issues)
	if proc.Deadline != nil {
		cmds = append(cmds, proc.Deadline.Issue)
	}
	for _, cmd := range cmds {
		if cmd.Type != "" && slices.Contains(proc.Handles, cmd.Type) {
			p.errorf(n, "%s: it would handle the command %s it issues; handles and issued types must differ", what, cmd.Type)
			break
		}
	}
	if len(p.errs) > before {
		return Process{}, false
	}
	return proc, true
}

// Expressions' problems end with what an expression may be: a command's data field
// any expression, a complete_when or a when a condition.
const (
	exprWant = "(an expression over state, event and process_id)"
	condWant = "(all, any or a boolean expression over state, event and process_id)"
)

// condition compiles a complete_when or an issue list entry's when: all, any or a
// boolean expression. Its problems are reported as a data field's are, on one line at
// their place in the file.
func (p *parser) condition(n *yaml.Node, what string, handles []string) (Condition, bool) {
	if n.Kind == yaml.ScalarNode && (n.Value == "all" || n.Value == "any") {
		return Condition{Source: n.Value, handles: handles}, true
	}
	before := len(p.errs)
	e := p.compileExpr(n, what, handles, true)
	if e == nil {
		for _, err := range p.errs[before:] {
			err.Msg = strings.Replace(err.Msg, exprWant, condWant, 1)
		}
		return Condition{}, false
	}
	return Condition{Source: e.Source, handles: handles, prog: e.prog}, true
}

// types reads a list of event types; empty says what its owner would then never do.
func (p *parser) types(n *yaml.Node, what, empty string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list of event types, got %s", what, kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(n, "%s is empty: %s", what, empty)
		return nil
	}
	var out []string
	for i, e := range n.Content {
		t, ok := p.str(e, fmt.Sprintf("%s[%d]", what, i))
		if !ok {
			continue
		}
		if reason := checkType(t); reason != "" {
			p.errorf(e, "%s[%d]: event type %s", what, i, reason)
			continue
		}
		if slices.Contains(out, t) {
			p.errorf(e, "%s[%d]: %q is listed twice", what, i, t)
			continue
		}
		out = append(out, t)
	}
	return out
}

// listed is the distinct strings of the list n, whether types accepts them or not; nil
// when n is not a list, is empty or has an entry that is not a string.
func listed(n *yaml.Node) []string {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil
	}
	var out []string
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			return nil
		}
		if !slices.Contains(out, e.Value) {
			out = append(out, e.Value)
		}
	}
	return out
}

// issues reads issue: one command (a mapping) or a list of them, each with a when.
func (p *parser) issues(n *yaml.Node, what string, handles []string, correlateBy string) ([]Command, bool) {
	if n.Kind != yaml.SequenceNode {
		return []Command{p.command(n, what, handles, correlateBy, false)}, false
	}
	if len(n.Content) == 0 {
		p.errorf(n, "%s is an empty list: the process would issue nothing", what)
		return nil, true
	}
	var out []Command
	types := map[string]int{}
	for i, e := range n.Content {
		c := p.command(e, fmt.Sprintf("%s[%d]", what, i), handles, correlateBy, true)
		if line, dup := types[c.Type]; dup && c.Type != "" {
			p.errorf(e, "%s[%d]: %s is issued twice (first at line %d); each command type once", what, i, c.Type, line)
		}
		types[c.Type] = e.Line
		out = append(out, c)
	}
	return out, true
}

// command reads a command: its type, its data and, for an entry of an issue list
// (withWhen), when it is issued.
func (p *parser) command(n *yaml.Node, what string, handles []string, correlateBy string, withWhen bool) Command {
	allowed := []string{"type", "data"}
	if withWhen {
		allowed = append(allowed, "when")
	}
	m := p.mapping(n, what, []string{"type"}, allowed...)
	var c Command
	if v, ok := m["type"]; ok {
		if t, ok := p.str(v, what+": type"); ok {
			if reason := checkType(t); reason != "" {
				p.errorf(v, "%s: type %s", what, reason)
			} else if withWhen && slices.Contains(reservedKeys, t) {
				p.errorf(v, "%s: type %q is reserved in an issue list: an entry's command key is its type, "+
					"and pmd keeps the keys %q and %q for an issue mapping's command and the deadline's; "+
					"give the command another type", what, t, KeyComplete, KeyDeadline)
			}
			c.Type = t
		}
	}
	if v, ok := m["when"]; ok {
		if cond, ok := p.condition(v, what+": when", handles); ok {
			c.When = &cond
		}
	}
	if v, ok := m["data"]; ok {
		c.Data = p.fields(v, what+": data", handles, correlateBy)
	}
	return c
}

// fields reads a command's data: a mapping of field names to expressions. No field may
// be named correlateBy: the data holds the process id under that name (Process.data),
// and a field would overwrite it.
func (p *parser) fields(n *yaml.Node, what string, handles []string, correlateBy string) []Field {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping of field names to expressions, got %s", what, kindName(n))
		return nil
	}
	var out []Field
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := p.str(k, what+": a field name")
		if !ok {
			continue
		}
		if seen[name] {
			p.errorf(k, "%s: field %q is given twice", what, name)
			continue
		}
		seen[name] = true
		if name == correlateBy && name != "" {
			p.errorf(k, "%s: field %q is the correlate_by field: the command's data holds the process id under it; name the field otherwise", what, name)
			continue
		}
		if e := p.compileExpr(v, fmt.Sprintf("%s.%s", what, name), handles, false); e != nil {
			out = append(out, Field{Name: name, Value: e})
		}
	}
	return out
}

// integer returns the integer scalar n and true; 0 and false (an error recorded)
// otherwise.
func (p *parser) integer(n *yaml.Node, what string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.errorf(n, "%s must be an integer, got %s", what, kindName(n))
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		p.errorf(n, "%s: %q is not an integer between -2147483648 and 2147483647", what, n.Value)
		return 0, false
	}
	return int(v), true
}

func (p *parser) deadline(n *yaml.Node, what string, handles []string, correlateBy string) *Deadline {
	m := p.mapping(n, what, []string{"after", "issue"}, "after", "issue")
	d := &Deadline{}
	if v, ok := m["after"]; ok {
		if s, ok := p.str(v, what+": after"); ok {
			after, err := time.ParseDuration(s)
			switch {
			case err != nil:
				p.errorf(v, "%s: after: %q is not a duration; write it like 48h, 90m or 30s", what, s)
			case after <= 0:
				p.errorf(v, "%s: after must be positive, got %s", what, s)
			}
			d.After = after
		}
	}
	if v, ok := m["issue"]; ok {
		d.Issue = p.command(v, what+": issue", handles, correlateBy, false)
	}
	return d
}

func (p *parser) retention(n *yaml.Node, what string) Retention {
	m := p.mapping(n, what, []string{"completed"}, "completed")
	var r Retention
	if v, ok := m["completed"]; ok {
		if s, ok := p.str(v, what+": completed"); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				p.errorf(v, "%s: completed: %q is not a duration; write it like 720h or 30m", what, s)
			case d <= 0:
				p.errorf(v, "%s: completed must be positive, got %s; leave retention out to keep processes", what, s)
			}
			r.Completed = d
		}
	}
	return r
}

// deliver reads a deliver mapping: a process manager's (queued) or a subscription's,
// which holds no event's data while it waits, and so takes no queue_bytes: refused
// saying so, and left out of the keys an unknown key's error lists.
func (p *parser) deliver(n *yaml.Node, what string, queued bool) *Deliver {
	keys := []string{"webhook", "max_attempts", "timeout"}
	if queued {
		keys = append(keys, "queue_bytes")
	} else if n.Kind == yaml.MappingNode {
		kept := *n
		kept.Content = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "queue_bytes" && k.Tag != "!!merge" {
				p.errorf(v, "%s: queue_bytes is for a process manager's deliver: a subscription holds no event's data while it waits (each attempt reads the event again)", what)
				continue
			}
			kept.Content = append(kept.Content, n.Content[i], n.Content[i+1])
		}
		n = &kept
	}
	m := p.mapping(n, what, []string{"webhook"}, keys...)
	d := &Deliver{}
	if v, ok := m["queue_bytes"]; ok {
		d.QueueBytes = p.queueBytes(v, what+": queue_bytes")
	}
	if v, ok := m["max_attempts"]; ok {
		var ok bool
		if d.MaxAttempts, ok = p.integer(v, what+": max_attempts"); ok && d.MaxAttempts < 1 {
			p.errorf(v, "%s: max_attempts must be at least 1, got %s", what, v.Value)
		}
	}
	if v, ok := m["timeout"]; ok {
		if s, ok := p.str(v, what+": timeout"); ok {
			timeout, err := time.ParseDuration(s)
			switch {
			case err != nil:
				p.errorf(v, "%s: timeout: %q is not a duration; write it like 10s or 500ms", what, s)
			case timeout <= 0:
				p.errorf(v, "%s: timeout must be positive, got %s", what, s)
			}
			d.Timeout = timeout
		}
	}
	if v, ok := m["webhook"]; ok {
		if s, ok := p.str(v, what+": webhook"); ok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.errorf(v, "%s: webhook %q is not an http or https URL", what, redact.URL(s))
			}
			d.Webhook = s
		}
	}
	return d
}

// queueBytes reads a deliver's queue_bytes: a size (bytesize.Parse) or a whole number of
// bytes, 0 holding none, which it returns as pm.Options.QueueBytes takes it (negative).
func (p *parser) queueBytes(n *yaml.Node, what string) int {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a size, like 64MiB, or a whole number of bytes, got %s", what, kindName(n))
		return 0
	}
	if strings.TrimSpace(n.Value) == "0" {
		return -1
	}
	size, err := bytesize.Parse(n.Value)
	switch {
	case errors.Is(err, bytesize.ErrNotASize):
		p.errorf(n, "%s: %q is not a size: want 0 (hold none) or a positive whole number with an optional unit, like 64MiB or 1GB", what, n.Value)
		return 0
	case err != nil:
		p.errorf(n, "%s: %v", what, err)
		return 0
	}
	return int(size)
}

// checkManagerName applies the process managers' naming rule: letters, digits, '_' and
// '-', at most 64 bytes, so that "<name>$<id>" is a plain stream name.
func checkManagerName(name string) string {
	if len(name) > 64 {
		return fmt.Sprintf("%q is %d bytes long, the limit is 64", name, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Sprintf("%q contains %q; only letters, digits, '_' and '-' are allowed", name, r)
		}
	}
	return ""
}

// checkType applies the store's rule for event types (pmd.CheckName) and returns what
// is wrong, or "".
func checkType(t string) string {
	if err := pmd.CheckName(t); err != nil {
		return err.Error()
	}
	return ""
}

// ErrCondition is matched by errors evaluating a complete_when expression.
var ErrCondition = errors.New("config: complete_when")
