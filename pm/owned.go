package pm

import (
	"strings"

	"github.com/pmd-dev/pmd"
)

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

// Keep has store keep whole the streams of the process manager named name whose
// records it decides on (pmd.Store.Keep), so that the store refuses retention settings
// hiding any of them, whoever asks (a Go program, or PUT /v1/streams/{stream}/metadata):
// its process streams "<Name>$<id>" (what the process issued and its pending deadlines:
// a process that no longer sees them issues its commands again), its deliveries
// "<Name>.deliveries$<id>" (a command whose CommandSkipped or CommandParked record is
// hidden is delivered again at the next start), its removal markers "<Name>.removed$<id>"
// (without one a late event starts the removed process again) and its checkpoint stream
// "<Name>.checkpoint", whose first checkpoint holds the mark that tells the runtime's own
// records from another writer's (without it a forged record written before the next
// start is trusted). Its snapshots streams take retention (a snapshot hidden costs a
// longer fold only). New keeps them; pmd serve keeps those of every process manager of
// its configuration at start, on every node of a cluster. The store forgets it when
// closed: a manager made on the store opened again keeps them again.
func Keep(store *pmd.Store, name string) error {
	return store.Keep(pmd.Kept{
		Owner: "process manager " + name,
		Why: "what it no longer sees it issued or delivered, it issues or delivers again; remove done processes with its " +
			"retention instead (pm.Options.Retention.Completed, or retention: {completed: ...} in pmd serve's configuration)",
		Streams:    []string{name + ".checkpoint"},
		Categories: []string{name, name + ".deliveries", name + ".removed"},
	})
}
