package pm

import "strings"

// Owners says which streams belong to a set of process managers and subscriptions: the
// streams they write and read back as their own records, so that a record another
// writer puts there is folded as theirs. A process manager named Name owns its process
// streams "<Name>$<process id>", "<Name>.checkpoint", and "<Name>.deliveries$<id>",
// "<Name>.removed$<id>" and "<Name>.snapshots$<id>"; a subscription named name owns
// "<name>.subscription". The zero value owns nothing.
type Owners struct {
	managers      map[string]bool
	subscriptions map[string]bool
}

// NewOwners returns the owners of the streams of the process managers and subscriptions
// named.
func NewOwners(managers, subscriptions []string) *Owners {
	o := &Owners{managers: map[string]bool{}, subscriptions: map[string]bool{}}
	for _, n := range managers {
		o.managers[n] = true
	}
	for _, n := range subscriptions {
		o.subscriptions[n] = true
	}
	return o
}

// managerSuffixes are the categories of a process manager's streams besides its process
// streams: "<Name><suffix>$<process id>".
var managerSuffixes = []string{".deliveries", ".removed", ".snapshots"}

// Owner reports who owns stream: kind is "process manager" or "subscription", name the
// owner's name; ok is false when none of o's does. Names of process managers and
// subscriptions hold no '$' or '.' (checkName), so a stream has at most one owner of
// each kind.
func (o *Owners) Owner(stream string) (kind, name string, ok bool) {
	if o == nil {
		return "", "", false
	}
	if n, found := strings.CutSuffix(stream, ".subscription"); found && o.subscriptions[n] {
		return "subscription", n, true
	}
	if n, found := strings.CutSuffix(stream, ".checkpoint"); found && o.managers[n] {
		return "process manager", n, true
	}
	category, _, found := strings.Cut(stream, "$")
	if !found {
		return "", "", false
	}
	if o.managers[category] {
		return "process manager", category, true
	}
	for _, suffix := range managerSuffixes {
		if n, found := strings.CutSuffix(category, suffix); found && o.managers[n] {
			return "process manager", n, true
		}
	}
	return "", "", false
}

// KeepsAll reports whether stream is one whose records a process manager of o decides
// on, so that retention must not hide any of them: a process stream "<Name>$<id>"
// (what the process issued and its pending deadlines: a process that no longer sees
// them issues its commands again), its deliveries "<Name>.deliveries$<id>" (a command
// whose CommandSkipped or CommandParked record is hidden is delivered again at the next
// start), a removal marker "<Name>.removed$<id>" (without it a late event starts the
// removed process again) or its checkpoint stream "<Name>.checkpoint", whose first
// checkpoint holds the mark that tells the runtime's own records from another writer's
// (without it a forged record written before the next start is trusted). name is the
// manager's.
func (o *Owners) KeepsAll(stream string) (name string, ok bool) {
	kind, name, ok := o.Owner(stream)
	if !ok || kind != "process manager" {
		return "", false
	}
	if stream == name+".checkpoint" {
		return name, true
	}
	category, _, found := strings.Cut(stream, "$")
	if !found || (category != name && category != name+".deliveries" && category != name+".removed") {
		return "", false
	}
	return name, true
}
