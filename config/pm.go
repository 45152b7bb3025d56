package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// Command keys of the commands a process from a config file issues, each issued once
// per process whatever its type: KeyComplete for the command of an issue mapping,
// KeyDeadline for the deadline's. The commands of an issue list are keyed by their
// types, so the reserved keys are refused as the type of an issue list entry: it would be
// taken for the command of that key.
const (
	KeyComplete = "complete"
	KeyDeadline = "deadline"
)

// reservedKeys are the command keys pmd gives commands whatever their types.
var reservedKeys = []string{KeyComplete, KeyDeadline}

// key is the command key of c, the i-th of p's issue commands.
func (p Process) key(c Command) string {
	if p.IssueList {
		return c.Type
	}
	return KeyComplete
}

// completes reports whether issuing the command of key and type typ marks the process
// complete: the command of an issue mapping, or of a list entry without a when. In a
// list, a command of key complete whose type is not complete was issued by an issue
// mapping before the file turned it into a list: the process completed then, and stays
// complete (a list entry of type complete, which an earlier pmd accepted, is refused now).
func (p Process) completes(key, typ string) bool {
	if !p.IssueList || key == KeyComplete {
		return key == KeyComplete && (!p.IssueList || typ != KeyComplete)
	}
	for _, c := range p.Issues {
		if c.Type == key {
			return c.When == nil
		}
	}
	return false
}

// Definition is the process manager p describes, ready for pm.New. An expression that
// fails to evaluate goes unreported; DefinitionReporting reports it.
func (p Process) Definition() pm.Definition[State] {
	return p.DefinitionReporting(nil)
}

// DefinitionReporting is Definition, calling report (unless nil) each time an expression
// fails to evaluate or a data value is not a JSON number. Decide runs again on every
// event of a process, so one broken expression is reported once per event: report must
// be quick, and should not log every call (ExpressionLog does not).
func (p Process) DefinitionReporting(report func(ExpressionError)) pm.Definition[State] {
	d := decider{Process: p, report: report}
	return pm.Definition[State]{
		Name:        p.Name,
		Version:     p.version(),
		Handles:     slices.Clone(p.Handles),
		ProcessID:   pm.DataField(p.CorrelateBy),
		NoProcessID: pm.DataFieldProblem(p.CorrelateBy),
		Init: func(id string) State {
			return State{ID: id, Seen: map[string]int{}, Data: map[string]any{}}
		},
		Apply:  p.apply,
		Decide: d.decide,
	}
}

// stateVersion names how apply builds a State; change it when apply changes.
const stateVersion = "config state 2"

// version is the definition's pm Version: what the state and the decisions of its
// processes depend on, so that a snapshot written under another complete_when, other
// handled types or other commands is not trusted. Deliver, Cache, SnapshotEvery
// and Retention change neither.
func (p Process) version() string {
	deadline := ""
	if p.Deadline != nil {
		deadline = fmt.Sprintf("%s %s", p.Deadline.After, p.Deadline.Issue.describe())
	}
	issues := make([]string, len(p.Issues))
	for i, c := range p.Issues {
		issues[i] = c.describe()
	}
	return fmt.Sprintf("%s; correlate_by %q; handles %q; complete_when %q; issue list %t %s; deadline %s",
		stateVersion, p.CorrelateBy, p.Handles, p.CompleteWhen.Source, p.IssueList, issues, deadline)
}

// describe is everything about c a decision depends on.
func (c Command) describe() string {
	when := ""
	if c.When != nil {
		when = c.When.Source
	}
	fields := make([]string, len(c.Data))
	for i, f := range c.Data {
		fields[i] = fmt.Sprintf("%q: %q", f.Name, f.Value.Source)
	}
	return fmt.Sprintf("{%q when %q data %v}", c.Type, when, fields)
}

// Options are the pm options p sets; the caller adds the rest.
func (p Process) Options() pm.Options {
	o := pm.Options{CacheSize: p.Cache, SnapshotEvery: p.SnapshotEvery, Retention: pm.Retention{Completed: p.Retention.Completed}}
	if p.Deliver != nil {
		o.MaxAttempts = p.Deliver.MaxAttempts
		o.QueueBytes = p.Deliver.QueueBytes
	}
	return o
}

// apply folds one event of the process stream into s. The maps of s are copied, never
// changed in place, so that a state the runtime keeps is never altered behind it.
func (p Process) apply(s State, e pmd.Event) State {
	if e.Link && slices.Contains(p.Handles, e.Type) {
		s.Seen = maps.Clone(s.Seen)
		if s.Seen == nil {
			s.Seen = map[string]int{}
		}
		s.Seen[e.Type]++
		s.Data = maps.Clone(s.Data)
		if s.Data == nil {
			s.Data = map[string]any{}
		}
		maps.Copy(s.Data, e.Data)
		if s.Events == 0 {
			s.First = e.Timestamp
		}
		s.Events++
		s.Last = LastEvent{ID: e.ID.String(), Type: e.Type, Stream: e.Stream, Data: e.Data}
		return s
	}
	if e.Link || e.Metadata[pm.MetaKind] != pm.KindCommand {
		return s
	}
	s.Issued = append(slices.Clip(s.Issued), e.Type)
	key, _ := e.Metadata[pm.MetaKey].(string)
	switch {
	case key == KeyDeadline:
		s.Expired = true
	case p.completes(key, e.Type):
		s.Completed = true
	}
	return s
}

// decider decides for the processes of a Process, reporting what fails to evaluate.
type decider struct {
	Process
	report func(ExpressionError) // nil reports nothing
}

// decide issues each command once its when holds (complete_when for those without),
// and keeps a deadline pending until the process is complete. An expired process
// issues nothing more; a complete_when or when that fails to evaluate counts as not
// holding, and is reported.
func (p decider) decide(s State) []pm.Command {
	if s.Expired {
		return nil
	}
	complete := s.Completed
	if !complete {
		complete = p.holds(p.CompleteWhen, "complete_when", s)
	}
	var out []pm.Command
	for i, c := range p.Issues {
		holds := complete
		if c.When != nil {
			holds = p.holds(*c.When, p.where(i)+".when", s)
		}
		if holds {
			out = append(out, pm.Command{Type: c.Type, Key: p.key(c), Data: p.data(c, p.where(i), s)})
		}
	}
	// The deadline is the only command with an At, always of key KeyDeadline: a process
	// has at most one pending deadline, which is why the process view lists its
	// deadlines whole (pm.Process.Deadlines, docs/api.md).
	if !complete && p.Deadline != nil && s.Events > 0 {
		out = append(out, pm.Command{Type: p.Deadline.Issue.Type, Key: KeyDeadline, At: s.First.Add(p.Deadline.After),
			Data: p.data(p.Deadline.Issue, "deadline.issue", s)})
	}
	return out
}

// where names the i-th command of issue, as the file does.
func (p Process) where(i int) string {
	if p.IssueList {
		return fmt.Sprintf("issue[%d]", i)
	}
	return "issue"
}

// holds is c over s; false, and reported, if it fails to evaluate.
func (p decider) holds(c Condition, where string, s State) bool {
	ok, err := c.Holds(s)
	if err != nil {
		p.reportError(where, c.Source, s, err)
	}
	return ok
}

func (p decider) reportError(where, source string, s State, err error) {
	if p.report != nil {
		p.report(ExpressionError{Manager: p.Name, Where: where, Source: source, ProcessID: s.ID, Err: err})
	}
}

// data is the data of command c, at where in the file, decided in state s: the process
// id under correlate_by, then each field's value. A field whose expression fails to
// evaluate (state.data.amount * 100 before any event set amount) is null: write
// `(state.data.amount ?? 0) * 100` to give it a value. So is one whose value holds a NaN
// or an infinity (a division by zero): JSON has no such number, and the store refuses
// it, and one that has no JSON form at all (a function, an object whose keys are not
// strings: see notJSON). All are reported.
func (p decider) data(c Command, where string, s State) map[string]any {
	out := map[string]any{p.CorrelateBy: s.ID}
	for _, f := range c.Data {
		v, err := f.Value.eval(s, p.Handles)
		if err == nil {
			if path, problem, ok := notJSON(v); ok {
				err = fmt.Errorf("%s%s %s", f.Name, path, problem)
			} else if path, bad, ok := pmd.NonFinite(v); ok {
				err = fmt.Errorf("%s%s is %v, not a JSON number", f.Name, path, bad)
			}
		}
		if err != nil {
			p.reportError(where+".data."+f.Name, f.Value.Source, s, err)
			v = nil
		}
		out[f.Name] = v
	}
	return out
}
