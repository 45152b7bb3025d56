package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// State is the state of a process defined in a config file: what it has seen and
// issued. It is the fold of the process stream.
type State struct {
	// ID is the process id.
	ID string `json:"id"`
	// Seen counts the handled events by type.
	Seen map[string]int `json:"seen"`
	// Data is the data of the handled events merged, a later event's field winning.
	Data map[string]any `json:"data"`
	// Events counts the handled events.
	Events int `json:"events"`
	// First is the store timestamp of the first handled event; deadlines count from it.
	First time.Time `json:"first"`
	// Issued lists the types of the commands issued, in order.
	Issued []string `json:"issued"`
	// Completed is set once the process issued its command.
	Completed bool `json:"completed"`
	// Expired is set once the process's deadline issued its command.
	Expired bool `json:"expired"`
	// Last is the handled event folded last: what expressions call event.
	Last LastEvent `json:"last"`
}

// MarshalJSON writes s as the API writes event data: a float of its data with no
// fraction is written 2.0 (jsonfloat), so that a reader of the process routes, which
// show the state, keeps it a float; written 2, it read as the integer 2.
func (s State) MarshalJSON() ([]byte, error) {
	type plain State
	s.Data, s.Last.Data = jsonfloat.MarkMap(s.Data), jsonfloat.MarkMap(s.Last.Data)
	return json.Marshal(plain(s))
}

// LastEvent is the handled event a process folded last.
type LastEvent struct {
	ID     string         `json:"id"`
	Type   string         `json:"type"`
	Stream string         `json:"stream"` // the stream it was written to
	Data   map[string]any `json:"data"`
}

// Condition is a compiled complete_when, or the when of an issue list entry (see
// parser.condition).
type Condition struct {
	// Source is complete_when as written.
	Source  string
	handles []string
	prog    *vm.Program // nil for all and any
}

// seenChecker finds seen.X where X is not a handled type: always 0, surely a typo.
type seenChecker struct {
	handles []string
	unknown string
	at      ast.Node // the property X, for its place in the expression
}

// isSeen reports whether n is seen or state.seen.
func isSeen(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return n.Value == "seen"
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		prop, isStr := n.Property.(*ast.StringNode)
		return ok && isStr && id.Value == "state" && prop.Value == "seen"
	}
	return false
}

// unknownSeen walks prog for a seen.X whose X is not one of handles.
func unknownSeen(prog *vm.Program, handles []string) *seenChecker {
	check := &seenChecker{handles: handles}
	node := prog.Node()
	ast.Walk(&node, check)
	return check
}

func (v *seenChecker) message() string {
	return fmt.Sprintf("seen.%s: %s is not one of the handled types %v", v.unknown, v.unknown, v.handles)
}

func (v *seenChecker) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || v.unknown != "" {
		return
	}
	if !isSeen(m.Node) {
		return
	}
	if prop, ok := m.Property.(*ast.StringNode); ok && !slices.Contains(v.handles, prop.Value) {
		v.unknown, v.at = prop.Value, prop
	}
}

// Holds reports whether s is complete. An expression that fails to evaluate, such as one
// comparing a data field that no event has set yet, returns an error matching
// ErrCondition; write `(data.guests ?? 0) >= 10` to give a missing field a value.
func (c Condition) Holds(s State) (bool, error) {
	switch {
	case c.prog != nil:
		out, err := expr.Run(c.prog, envOf(s, c.handles))
		if err != nil {
			return false, fmt.Errorf("%w %q: %s", ErrCondition, c.Source, exprMessage(err))
		}
		return out.(bool), nil
	case c.Source == "any":
		for _, t := range c.handles {
			if s.Seen[t] > 0 {
				return true, nil
			}
		}
		return false, nil
	default: // all
		for _, t := range c.handles {
			if s.Seen[t] == 0 {
				return false, nil
			}
		}
		return true, nil
	}
}
