package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// Command keys of the commands a process from a config file issues: one per process
// each, whatever their types.
const (
	KeyComplete = "complete"
	KeyDeadline = "deadline"
)

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
const stateVersion = "config state 1"

// version is the definition's pm Version: what the state and the decisions of its
// processes depend on, so that a snapshot written under another complete_when, other
// handled types or other commands is not trusted. Deliver, Cache and SnapshotEvery
// change neither.
func (p Process) version() string {
	deadline := ""
	if p.Deadline != nil {
		deadline = fmt.Sprintf("%s %q", p.Deadline.After, p.Deadline.Issue.Type)
	}
	return fmt.Sprintf("%s; correlate_by %q; handles %q; complete_when %q; issue %q; deadline %s",
		stateVersion, p.CorrelateBy, p.Handles, p.CompleteWhen.Source, p.Issue.Type, deadline)
}

// Options are the pm options p sets; the caller adds the rest.
func (p Process) Options() pm.Options {
	return pm.Options{CacheSize: p.Cache, SnapshotEvery: p.SnapshotEvery}
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
		return s
	}
	if e.Link || e.Metadata[pm.MetaKind] != pm.KindCommand {
		return s
	}
	s.Issued = append(slices.Clip(s.Issued), e.Type)
	switch e.Metadata[pm.MetaKey] {
	case KeyComplete:
		s.Completed = true
	case KeyDeadline:
		s.Expired = true
	}
	return s
}

// decide issues the command once complete_when holds, and keeps a deadline pending
// until then. An expired process issues nothing more; a complete_when that fails to
// evaluate counts as not complete.
func (p Process) decide(s State) []pm.Command {
	if s.Expired {
		return nil
	}
	data := func() map[string]any { return map[string]any{p.CorrelateBy: s.ID} }
	complete := s.Completed
	if !complete {
		complete, _ = p.CompleteWhen.Holds(s)
	}
	if complete {
		return []pm.Command{{Type: p.Issue.Type, Key: KeyComplete, Data: data()}}
	}
	if p.Deadline != nil && s.Events > 0 {
		return []pm.Command{{Type: p.Deadline.Issue.Type, Key: KeyDeadline, At: s.First.Add(p.Deadline.After), Data: data()}}
	}
	return nil
}
