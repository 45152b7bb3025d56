package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/pmd-dev/pmd/internal/logevery"
	"gopkg.in/yaml.v3"
)

// env is what an expression of the config file sees: complete_when, a command's when
// and the values of a command's data. Its struct type, not a map, makes expr reject an
// unknown name (state.dta, evnt) when the file is loaded. Each field carries its name
// as the json and msgpack tags too, so that a value such as `event` (a command's data
// field, toJSON(state)) is an object with the names expressions use, not Go's.
type env struct {
	State     stateView `expr:"state" json:"state" msgpack:"state"`
	Event     eventView `expr:"event" json:"event" msgpack:"event"`
	ProcessID string    `expr:"process_id" json:"process_id" msgpack:"process_id"`
	// The names complete_when knew before state existed, kept so that existing files
	// stay valid.
	ID     string         `expr:"id" json:"id" msgpack:"id"`
	Seen   map[string]int `expr:"seen" json:"seen" msgpack:"seen"`
	Data   map[string]any `expr:"data" json:"data" msgpack:"data"`
	Events int            `expr:"events" json:"events" msgpack:"events"`
}

type stateView struct {
	ID     string         `expr:"id" json:"id" msgpack:"id"`
	Seen   map[string]int `expr:"seen" json:"seen" msgpack:"seen"`
	Data   map[string]any `expr:"data" json:"data" msgpack:"data"`
	Events int            `expr:"events" json:"events" msgpack:"events"`
}

type eventView struct {
	ID     string         `expr:"id" json:"id" msgpack:"id"`
	Type   string         `expr:"type" json:"type" msgpack:"type"`
	Stream string         `expr:"stream" json:"stream" msgpack:"stream"`
	Data   map[string]any `expr:"data" json:"data" msgpack:"data"`
}

// envOf is the environment of s; every handled type reads as seen, 0 if not yet.
func envOf(s State, handles []string) env {
	seen := maps.Clone(s.Seen)
	if seen == nil {
		seen = map[string]int{}
	}
	for _, t := range handles {
		if _, ok := seen[t]; !ok {
			seen[t] = 0 // a handled type not seen yet reads as 0, not nil
		}
	}
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	edata := s.Last.Data
	if edata == nil {
		edata = map[string]any{}
	}
	st := stateView{ID: s.ID, Seen: seen, Data: data, Events: s.Events}
	return env{
		State:     st,
		Event:     eventView{ID: s.Last.ID, Type: s.Last.Type, Stream: s.Last.Stream, Data: edata},
		ProcessID: s.ID,
		ID:        s.ID, Seen: seen, Data: data, Events: s.Events,
	}
}

// Expression is a compiled expression of the config file.
type Expression struct {
	// Source is the expression as written.
	Source string
	prog   *vm.Program
}

// eval evaluates e over the state s of a process handling handles.
func (e *Expression) eval(s State, handles []string) (any, error) {
	v, err := expr.Run(e.prog, envOf(s, handles))
	if err != nil {
		return nil, errors.New(exprMessage(err))
	}
	return v, nil
}

// exprMessage is what a run of an expression says went wrong, on one line: a log line
// has no room for expr's snippet of the source pointing at the place.
func exprMessage(err error) string {
	if fe, ok := err.(*file.Error); ok {
		return fe.Message
	}
	return err.Error()
}

// compileExpr compiles the expression of the scalar node n, any result type unless
// boolean, for a process manager handling handles (nil when they are not known, handles
// being missing or malformed: seen.X is then not checked); a problem is reported at its
// line and column in the file.
func (p *parser) compileExpr(n *yaml.Node, what string, handles []string, boolean bool) *Expression {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		p.errorf(n, "%s must be an expression, got %s", what, kindName(n))
		return nil
	}
	opts := []expr.Option{expr.Env(env{})}
	if boolean {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(n.Value, opts...)
	if err == nil && handles != nil {
		err = checkSeen(prog, n.Value, handles)
	}
	if err == nil {
		err = checkFunctionNames(prog, n.Value)
	}
	if err == nil && prog.Node().Type() != nil && prog.Node().Type().Kind() == reflect.Func {
		// A method not called (now().Add) is a function, not a value.
		err = errors.New("its value is a function: call it")
	}
	if err != nil {
		line, col := n.Line, n.Column
		msg := err.Error()
		if fe, ok := err.(*file.Error); ok {
			msg = fe.Message
			// On one line the place within the expression is the place in the file;
			// in a block scalar the node's own place is the best known.
			if fe.Line <= 1 && n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle {
				col += fe.Column
				if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
					col++ // the opening quote
				}
			}
		}
		if bareWord.MatchString(n.Value) && strings.HasPrefix(msg, "unknown name ") {
			// carrier: DHL reads DHL as a name; a string needs quotes inside the YAML value.
			msg += fmt.Sprintf("; write \"'%s'\" for a string", n.Value)
		}
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: col,
			Msg: fmt.Sprintf("%s: %q: %s (an expression over state, event and process_id)", what, n.Value, msg)})
		return nil
	}
	return &Expression{Source: n.Value, prog: prog}
}

// bareWord matches an expression that is one identifier and nothing else.
var bareWord = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkSeen returns an error placed in src at the first seen.X or state.seen.X whose X
// is not one of handles (see seenChecker).
func checkSeen(prog *vm.Program, src string, handles []string) error {
	check := unknownSeen(prog, handles)
	if check.unknown == "" {
		return nil
	}
	fe := &file.Error{Location: check.at.Location(), Message: check.message()}
	return fe.Bind(file.NewSource(src))
}

// checkFunctionNames returns an error placed in src at the first name of a function
// that is not called: one of expr's (first, upper, date), anywhere in the expression
// ({'s': first}, [first], first ?? 'x'), compiles as a field of env, which has none of
// that name, and so fails at every decision ("cannot fetch first from config.env").
// A let variable holding a method (let f = now().Add; [f]) is a value, null when
// decided as [now().Add] is.
func checkFunctionNames(prog *vm.Program, src string) error {
	check := &funcNameChecker{callees: map[ast.Node]bool{}, lets: map[string]bool{}}
	node := prog.Node()
	ast.Walk(&node, check)
	for _, id := range check.names {
		if check.callees[id] || check.lets[id.Value] {
			continue
		}
		fe := &file.Error{Location: id.Location(), Message: fmt.Sprintf(
			"%s is a function, not a value: call it, %s(...), or write \"'%s'\" for a string", id.Value, id.Value, id.Value)}
		return fe.Bind(file.NewSource(src))
	}
	return nil
}

// funcNameChecker collects the identifiers whose type is a function, left to right, the
// callees of calls (f in f(x)), which are not values, and the names of let variables.
type funcNameChecker struct {
	names   []*ast.IdentifierNode
	callees map[ast.Node]bool
	lets    map[string]bool
}

func (v *funcNameChecker) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.IdentifierNode:
		if t := n.Type(); t != nil && t.Kind() == reflect.Func {
			v.names = append(v.names, n)
		}
	case *ast.CallNode:
		v.callees[n.Callee] = true
	case *ast.VariableDeclaratorNode:
		v.lets[n.Name] = true
	}
}

// ExpressionError is an expression of a process manager that failed when a process was
// decided: complete_when or a when (the process is then not complete, or the command
// not issued), or a data value (the field is then null).
type ExpressionError struct {
	Manager string // the process manager's name
	// Where is the expression's place in the process manager, as the file names it:
	// complete_when, issue[1].when, issue.data.amount, deadline.issue.data.reason.
	Where     string
	Source    string // the expression as written
	ProcessID string // the process decided
	Err       error
}

func (e ExpressionError) Error() string {
	return fmt.Sprintf("config: process manager %s: %s: %q failed for process %q: %v", e.Manager, e.Where, e.Source, e.ProcessID, e.Err)
}

func (e ExpressionError) Unwrap() error { return e.Err }

// ExpressionLog counts the ExpressionErrors of process managers (Process.DefinitionReporting
// with Report) and logs them, each expression of each manager at most once a minute (a
// broken expression fails on every event of every process, and must not flood the log),
// the line saying how many were not logged since. The zero value is ready to use and logs
// to slog.Default(); it is safe for concurrent use.
type ExpressionLog struct {
	Logger *slog.Logger     // nil means slog.Default()
	Now    func() time.Time // the clock of the rate limit; nil means time.Now

	mu     sync.Mutex
	counts map[string]uint64           // by manager
	lines  map[[2]string]logevery.Line // by manager and where
}

// Report counts e and logs it unless its expression was logged less than a minute ago.
func (l *ExpressionLog) Report(e ExpressionError) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	at := now()
	key := [2]string{e.Manager, e.Where}
	l.mu.Lock()
	if l.counts == nil {
		l.counts, l.lines = map[string]uint64{}, map[[2]string]logevery.Line{}
	}
	l.counts[e.Manager]++
	line := l.lines[key]
	quiet, log := line.Log(at)
	l.lines[key] = line
	l.mu.Unlock()
	if !log {
		return
	}
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn("pm: an expression of the config file failed to evaluate", "manager", e.Manager, "where", e.Where,
		"expression", e.Source, "process", e.ProcessID, "err", e.Err, "suppressed", quiet)
}

// Count is how many errors of manager's expressions were reported.
func (l *ExpressionLog) Count(manager string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[manager]
}
