package client

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// The checks here refuse, before anything is sent, input the embedded store would
// refuse, with the *pmd.InvalidArgumentError it would give (the same Arg): a name the
// client cannot even put into a path (an empty one would reach another route), or data
// JSON cannot carry (NaN). They reuse the root package's rules (pmd.CheckName,
// pmd.CheckWritable, pmd.CheckCategory, pmd.NonFinite, pmd.NonStringKey) rather than spell
// them again.

func invalid(arg, format string, a ...any) error {
	return &pmd.InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// checked turns a failed root-package check into an *pmd.InvalidArgumentError naming arg.
func checked(arg string, err error) error {
	if err != nil {
		return &pmd.InvalidArgumentError{Arg: arg, Reason: err.Error()}
	}
	return nil
}

// checkStream checks the name of a stream to be read (pmd.All included).
func checkStream(stream string) error { return checked("stream", pmd.CheckName(stream)) }

// checkWritable checks the name of a stream to be written, as the store's writes do.
func checkWritable(stream string) error { return checked("stream", pmd.CheckWritable(stream)) }

// checkEvents checks what the store checks of an append before writing (at least one
// event; of each its type, an id not given twice, and data and metadata holding no NaN
// or infinity and no map with keys that are not strings), naming the field as it does.
func checkEvents(events []pmd.EventData) error {
	if len(events) == 0 {
		return invalid("events", "must hold at least one entry")
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		arg := func(field string) string { return fmt.Sprintf("events[%d].%s", i, field) }
		if err := checked(arg("type"), pmd.CheckName(e.Type)); err != nil {
			return err
		}
		if e.ID != uuid.Nil { // the store gives one a fresh id, never one given
			if seen[e.ID] {
				return invalid(arg("id"), "%s is given twice", e.ID)
			}
			seen[e.ID] = true
		}
		if path, v, ok := pmd.NonFinite(e.Data); ok {
			return invalid(arg("data")+path, "%v is not a JSON number", v)
		}
		if path, v, ok := pmd.NonFinite(e.Metadata); ok {
			return invalid(arg("metadata")+path, "%v is not a JSON number", v)
		}
		if path, k, ok := pmd.NonStringKey(e.Data); ok {
			return invalid(arg("data")+path, "the key %v is not a string: data is a JSON object, whose keys are strings", k)
		}
		if path, k, ok := pmd.NonStringKey(e.Metadata); ok {
			return invalid(arg("metadata")+path, "the key %v is not a string: metadata is a JSON object, whose keys are strings", k)
		}
	}
	return nil
}

// checkLinks checks the ids of a link as the store does before writing: at least one,
// none the nil UUID, none given twice.
func checkLinks(ids []uuid.UUID) error {
	if len(ids) == 0 {
		return invalid("event_ids", "must hold at least one entry")
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, id := range ids {
		arg := fmt.Sprintf("event_ids[%d].id", i)
		if id == uuid.Nil {
			return invalid(arg, "must not be the nil UUID")
		}
		if seen[id] {
			return invalid(arg, "%s is given twice", id)
		}
		seen[id] = true
	}
	return nil
}

// checkLimit refuses a negative limit, as the store's reads do.
func checkLimit(limit int) error {
	if limit < 0 {
		return invalid("limit", "must not be negative, got %d", limit)
	}
	return nil
}
