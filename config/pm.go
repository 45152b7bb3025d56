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
// types.
const (
	KeyComplete = "complete"
	KeyDeadline = "deadline"
)

// key is the command key of c, the i-th of p's issue commands.
func (p Process) key(c Command) string {
	if p.IssueList {
		return c.Type
	}
	return KeyComplete
}

// completes reports whether issuing the command of key marks the process complete:
// the command of an issue mapping, or of a list entry without a when.
func (p Process) completes(key string) bool {
	if key == KeyComplete {
		return true
	}
	for _, c := range p.Issues {
		if p.IssueList && c.Type == key {
			return c.When == nil
		}
	}
	return false
}

// Definition is the process manager p describes, ready for pm.New.
func (p Process) Definition() pm.Definition[State] {
	return pm.Definition[State]{
		Name:      p.Name,
		Version:   p.version(),
		Handles:   slices.Clone(p.Handles),
		ProcessID: pm.DataField(p.CorrelateBy),
		Init: func(id string) State {
			return State{ID: id, Seen: map[string]int{}, Data: map[string]any{}}
		},
		Apply:  p.apply,
		Decide: p.decide,
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
	case p.completes(key):
		s.Completed = true
	}
	return s
}

// decide issues each command once its when holds (complete_when for those without),
// and keeps a deadline pending until the process is complete. An expired process
// issues nothing more; a complete_when or when that fails to evaluate counts as not
// holding.
func (p Process) decide(s State) []pm.Command {
	if s.Expired {
		return nil
	}
	complete := s.Completed
	if !complete {
		complete, _ = p.CompleteWhen.Holds(s)
	}
	var out []pm.Command
	for _, c := range p.Issues {
		holds := complete
		if c.When != nil {
			holds, _ = c.When.Holds(s)
		}
		if holds {
			out = append(out, pm.Command{Type: c.Type, Key: p.key(c), Data: p.data(c, s)})
		}
	}
	if !complete && p.Deadline != nil && s.Events > 0 {
		out = append(out, pm.Command{Type: p.Deadline.Issue.Type, Key: KeyDeadline, At: s.First.Add(p.Deadline.After), Data: p.data(p.Deadline.Issue, s)})
	}
	return out
}

// data is the data of command c decided in state s: the process id under
// correlate_by, then each field's value. A field whose expression fails to evaluate
// (state.data.amount * 100 before any event set amount) is null: write
// `(state.data.amount ?? 0) * 100` to give it a value.
func (p Process) data(c Command, s State) map[string]any {
	out := map[string]any{p.CorrelateBy: s.ID}
	for _, f := range c.Data {
		v, err := f.Value.eval(s, p.Handles)
		if err != nil {
			v = nil
		}
		out[f.Name] = v
	}
	return out
}
