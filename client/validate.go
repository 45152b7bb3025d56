package client

import (
	"fmt"

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

// checkEvents checks what the store checks of each event before writing (its type,
// and data and metadata holding no NaN or infinity and no map with keys that are not
// strings), naming the field as it does.
func checkEvents(events []pmd.EventData) error {
	for i, e := range events {
		arg := func(field string) string { return fmt.Sprintf("events[%d].%s", i, field) }
		if err := checked(arg("type"), pmd.CheckName(e.Type)); err != nil {
			return err
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

// checkLimit refuses a negative limit, as the store's reads do.
func checkLimit(limit int) error {
	if limit < 0 {
		return invalid("limit", "must not be negative, got %d", limit)
	}
	return nil
}
