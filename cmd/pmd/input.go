package main

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The client commands check what they can of their arguments before they dial: a name
// the store's rules refuse, or an id that is not one, is a command line that makes no
// sense (exit 2) and nothing is sent. An empty name would otherwise reach the daemon as
// another route ("GET /v1/streams/" lists the streams) and fail with a confusing answer.

// checkName checks name by the rules of stream names and event types (pmd.CheckName),
// naming what the argument is.
func checkName(what, name string) error {
	if err := pmd.CheckName(name); err != nil {
		return &usageError{fmt.Sprintf("%s %v", what, err)}
	}
	return nil
}

// checkWritable checks the STREAM of append, link and delete (pmd.CheckWritable): a
// name, and not one of the store's own $-streams, which no client writes.
func checkWritable(stream string) error {
	if err := pmd.CheckWritable(stream); err != nil {
		return &usageError{fmt.Sprintf("STREAM %v", err)}
	}
	return nil
}

// checkCategory checks the NAME of category (pmd.CheckCategory): a stream name given by
// mistake would read nothing.
func checkCategory(name string) error {
	if err := pmd.CheckCategory(name); err != nil {
		return &usageError{fmt.Sprintf("NAME %v", err)}
	}
	return nil
}

// checkProcess checks the NAME ID of a process by the rules of package pm: both names,
// and the id for a process the store may hold (pm.CheckStoredProcessID: NAME$ID a
// stream name). commands says the process must be one whose commands are delivered
// (retry, skip): then the id must also leave room for its deliveries stream
// (pm.CheckProcessID), which a process that an earlier version took with a longer id
// has none of, so no command to retry or skip. "." and ".." go to the daemon either
// way (the client escapes them): a store written before they were refused may hold one.
func checkProcess(name, id string, commands bool) error {
	if err := checkName("NAME", name); err != nil {
		return err
	}
	if err := checkName("ID", id); err != nil {
		return err
	}
	check := pm.CheckStoredProcessID
	if commands && id != "." && id != ".." {
		check = pm.CheckProcessID
	}
	if err := check(name, id); err != nil {
		return &usageError{fmt.Sprintf("ID %q cannot name a process of %s: it %v", id, name, err)}
	}
	return nil
}

// parseID reads an event or command id given as argument what.
func parseID(what, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, &usageError{fmt.Sprintf("%s %q is not a UUID (want the 36-character form, like 0190c1d2-0000-7000-8000-000000000001)", what, s)}
	}
	return id, nil
}

// splitTypes reads the comma-separated event types of a --types given on the command
// line. An empty value is refused, as an empty --stream is: it would follow the whole log.
// So are an empty element and a type with white space around it, which no event would
// match ("Paid, Picked" would follow " Picked"); a space inside a type is the type's.
func splitTypes(s string) ([]string, error) {
	if s == "" {
		return nil, &usageError{`--types "" is empty: give event types, or leave --types out to follow every type`}
	}
	types := strings.Split(s, ",")
	for i, t := range types {
		what := fmt.Sprintf("--types %q: type %d of %d", s, i+1, len(types))
		if t != "" && strings.TrimSpace(t) != t {
			msg := fmt.Sprintf("%s %q has white space around it; separate the types with commas alone", what, t)
			if trimmed := trimAll(types); len(trimmed) > 0 {
				msg += ", as in " + strings.Join(trimmed, ",")
			}
			return nil, &usageError{msg}
		}
		if err := checkName(what, t); err != nil {
			return nil, err
		}
	}
	return types, nil
}

// trimAll is types without white space around each, and without the empty ones.
func trimAll(types []string) []string {
	var out []string
	for _, t := range types {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
