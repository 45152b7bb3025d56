package pm

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// A Definition describes a process manager whose state is of type S.
//
// The state of one process is the fold of its stream: Init, then Apply for every event
// in it, in order. The stream holds the handled events (links) and the events the
// runtime writes for the process: its commands and its deadline records (see
// DeadlineScheduled). Decide then says, given the state, which commands should be issued
// now and which deadlines should be pending. Both Apply and Decide must be pure: the
// runtime calls them again on every replay.
type Definition[S any] struct {
	// Name names the process manager and its streams: process streams are
	// "<Name>$<process id>". Letters, digits, '_' and '-' only, at most 64 bytes. It
	// must not be the category of the streams the handled events are written to: an
	// event already in its process stream cannot be linked there, and is skipped as
	// unmatched (Stats.Unmatched).
	Name string
	// Handles lists the event types the process manager handles.
	Handles []string
	// ProcessID finds the process an event belongs to; false ignores the event.
	// DataField builds the common case.
	ProcessID func(pmd.Event) (string, bool)
	// NoProcessID, if set, says why ProcessID found no process id in an event, for the
	// line the runtime logs about it (see Stats.Unmatched); nil, or "", logs "it has no
	// process id". DataFieldProblem goes with DataField.
	NoProcessID func(pmd.Event) string
	// Init returns the state of a process before any event.
	Init func(processID string) S
	// Apply returns the state after e. It sees the handled events (Link is true) and the
	// events the runtime wrote into the process stream: issued commands and deadline
	// records. Events it does not care about should leave the state unchanged.
	Apply func(state S, e pmd.Event) S
	// Decide returns what should be issued given the state: commands with a zero At are
	// issued now, commands with an At are deadlines, issued at At unless a later Decide
	// no longer returns them. A command is issued at most once per process, identified by
	// its Key, so Decide may keep returning commands that were already issued.
	Decide func(state S) []Command
	// Version names how Init and Apply build the state: change it whenever they change
	// what a state holds after the same events, so that snapshots written before the
	// change are not trusted (see Options.SnapshotEvery). A snapshot carries a
	// fingerprint of Version and of the shape of S (its types, fields and tags), and a
	// process whose newest snapshot has another fingerprint is folded from its stream;
	// a new or renamed field of S needs no new Version.
	Version string
}

// Command is a command a process issues.
type Command struct {
	// Type is the command's event type.
	Type string
	// Data is the command's payload.
	Data map[string]any
	// Key identifies the command within its process: a process issues each key at most
	// once. Empty means Type.
	Key string
	// At, when set, makes the command a deadline: it is issued at At, unless by then
	// Decide has stopped returning it. A deadline whose At has passed when it is decided
	// is issued at once.
	At time.Time

	// Set by the runtime on issued commands.

	// ID is the id of the command's event in the store, stable across redeliveries: a
	// receiver drops duplicates by it.
	ID uuid.UUID
	// ProcessID is the process that issued the command.
	ProcessID string
	// Correlation is the correlation id (metadata correlation_id) of the command's event,
	// carried over from the event that caused it. A handler that appends events in
	// response gives them this correlation_id, and ID as their causation_id.
	Correlation string
}

// noProcessID is why ProcessID found no process id in e.
func (d Definition[S]) noProcessID(e pmd.Event) string {
	if d.NoProcessID != nil {
		if reason := d.NoProcessID(e); reason != "" {
			return reason
		}
	}
	return "it has no process id"
}

func (c Command) key() string {
	if c.Key != "" {
		return c.Key
	}
	return c.Type
}

// DataField returns a ProcessID function that reads the process id from the event's data
// field name. A string is used as is; an integer is written in decimal, and so is a
// float with no fraction up to 2^53: the HTTP API decodes {"order_id": 42} to the
// integer 42, but a Go caller may hold the float 42 (an event read through client/
// with encoding/json and appended again), and it is process "42" too. Any other value,
// or a missing or empty field, ignores the event; DataFieldProblem says why.
func DataField(name string) func(pmd.Event) (string, bool) {
	return func(e pmd.Event) (string, bool) {
		id, problem := dataFieldID(name, e)
		return id, problem == ""
	}
}

// DataFieldProblem returns a NoProcessID function for DataField(name): it says what is
// wrong with the field, e.g. `order_id is a float64 (42.5), want a string or an
// integer`.
func DataFieldProblem(name string) func(pmd.Event) string {
	return func(e pmd.Event) string {
		_, problem := dataFieldID(name, e)
		return problem
	}
}

// maxExactFloat is the largest integer a float64 holds exactly, with all below it.
const maxExactFloat = 1 << 53

// dataFieldID is the process id in e's data field name, or what is wrong with it.
func dataFieldID(name string, e pmd.Event) (id, problem string) {
	raw, ok := e.Data[name]
	switch v := raw.(type) {
	case string:
		id = v
	case int:
		id = strconv.FormatInt(int64(v), 10)
	case int8:
		id = strconv.FormatInt(int64(v), 10)
	case int16:
		id = strconv.FormatInt(int64(v), 10)
	case int32:
		id = strconv.FormatInt(int64(v), 10)
	case int64:
		id = strconv.FormatInt(v, 10)
	case uint:
		id = strconv.FormatUint(uint64(v), 10)
	case uint8:
		id = strconv.FormatUint(uint64(v), 10)
	case uint16:
		id = strconv.FormatUint(uint64(v), 10)
	case uint32:
		id = strconv.FormatUint(uint64(v), 10)
	case uint64:
		id = strconv.FormatUint(v, 10)
	case float32:
		id = integralFloat(float64(v))
	case float64:
		id = integralFloat(v)
	}
	switch {
	case id != "":
		return id, ""
	case !ok:
		return "", name + " is missing"
	case raw == nil:
		return "", name + " is null"
	case raw == "":
		return "", name + " is empty"
	}
	shown := fmt.Sprint(raw)
	if len(shown) > 40 {
		shown = shown[:40] + "…"
	}
	return "", fmt.Sprintf("%s is a %T (%s), want a string or an integer", name, raw, shown)
}

// integralFloat is f in decimal if it is an integer a float64 holds exactly, else "".
func integralFloat(f float64) string {
	if f != math.Trunc(f) || math.Abs(f) > maxExactFloat {
		return "" // a fraction, too large to be exact, NaN or an infinity
	}
	return strconv.FormatInt(int64(f), 10)
}

// ErrInvalidDefinition is matched by every error about a Definition that cannot run.
var ErrInvalidDefinition = errors.New("invalid process manager definition")

// DefinitionError says what is wrong with a Definition.
type DefinitionError struct {
	Name   string // the definition's Name, as given
	Field  string // e.g. "Name", "Handles[1]", "Decide"
	Reason string
}

func (e *DefinitionError) Error() string {
	return fmt.Sprintf("pm: definition %q: %s %s", e.Name, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidDefinition) hold.
func (e *DefinitionError) Is(target error) bool { return target == ErrInvalidDefinition }

const maxNameLen = 64

// checkName applies the rule of process manager and subscription names, which name
// their streams: letters, digits, '_' and '-', at most maxNameLen bytes. It returns what
// is wrong, or "".
func checkName(name string) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > maxNameLen {
		return fmt.Sprintf("is %d bytes long, the limit is %d", len(name), maxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Sprintf("contains %q; only letters, digits, '_' and '-' are allowed", r)
		}
	}
	return ""
}

// Validate reports the first thing that keeps d from running, as a *DefinitionError.
func (d Definition[S]) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &DefinitionError{Name: d.Name, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if reason := checkName(d.Name); reason != "" {
		return bad("Name", "%s", reason)
	}
	if len(d.Handles) == 0 {
		return bad("Handles", "is empty: the process manager would never run")
	}
	seen := make(map[string]bool, len(d.Handles))
	for i, t := range d.Handles {
		field := fmt.Sprintf("Handles[%d]", i)
		if err := checkType(t); err != "" {
			return bad(field, "%s", err)
		}
		if seen[t] {
			return bad(field, "repeats %q", t)
		}
		seen[t] = true
	}
	switch {
	case d.ProcessID == nil:
		return bad("ProcessID", "is nil")
	case d.Init == nil:
		return bad("Init", "is nil")
	case d.Apply == nil:
		return bad("Apply", "is nil")
	case d.Decide == nil:
		return bad("Decide", "is nil")
	}
	return nil
}

// checkType applies the store's rule for event types (pmd.CheckName) and returns what
// is wrong, or "".
func checkType(t string) string {
	if err := pmd.CheckName(t); err != nil {
		return err.Error()
	}
	return ""
}

// CheckProcessID reports why id cannot be the id of a new process of the manager called
// name, nil if it can: an event of such an id belongs to no process. The error says what
// is wrong with id, for a caller to put after it ("process id %q ...").
func CheckProcessID(name, id string) error {
	if reason := checkProcessID(name, id); reason != "" {
		return errors.New(reason)
	}
	return nil
}

// CheckStoredProcessID is CheckProcessID for a process that a store may already hold:
// "." and "..", and ids too long for "<Name>.deliveries$<id>" but not for "<Name>$<id>",
// which earlier versions took, pass (Manager.Process, List and the runtime go on with
// such a process if its stream exists; see the package doc).
func CheckStoredProcessID(name, id string) error {
	if reason := checkStoredProcessID(name, id); reason != "" {
		return errors.New(reason)
	}
	return nil
}

// checkProcessID reports why id cannot name a process of a manager called name.
func checkProcessID(name, id string) string {
	if dotID(id) {
		return dotReason
	}
	// The longest stream a process has is its deliveries stream: an id that leaves no
	// room for it would have its first command, or already its snapshots stream, refused
	// by the store, and stop the manager at every start.
	if n := len(deliveriesStream(name, id)); n > maxStreamName {
		return fmt.Sprintf("makes the stream name %s.deliveries$<id> %d bytes long, the limit is %d", name, n, maxStreamName)
	}
	return checkStoredProcessID(name, id)
}

// maxStreamName is the store's limit on the length of a stream name (pmd.CheckName).
const maxStreamName = 256

// fits reports whether stream is short enough for the store to name it. A process
// that a store written before ids had to leave room for "<Name>.deliveries$<id>"
// already holds may have a snapshots, removal marker or deliveries stream that cannot
// be named: it goes on without it (Manager.checkID).
func fits(stream string) bool { return len(stream) <= maxStreamName }

// deliveriesStreamIfAny is the deliveries stream of process id of manager name, or ""
// when its name is too long to be one (a process an earlier version stored: checkID).
func deliveriesStreamIfAny(name, id string) string {
	if d := deliveriesStream(name, id); fits(d) {
		return d
	}
	return ""
}

// dotReason is why "." and ".." name no process: a process of such an id could be
// written but never opened, retried or skipped over HTTP.
const dotReason = "is a dot segment, which no URL can name"

// dotID reports whether id is "." or "..". Stores written before they were refused may
// hold such a process: Manager.checkID lets an existing one go on.
func dotID(id string) bool { return id == "." || id == ".." }

// checkStoredProcessID is checkProcessID but for the dot rule and the room for the
// other streams of a process: the rule of the ids of the process streams a store may
// hold, "<Name>$<id>" a stream name. Stores written before those rules may hold a
// process they refuse: Manager.checkID lets an existing one go on.
func checkStoredProcessID(name, id string) string {
	if id == "" {
		return "is empty"
	}
	if n := len(name) + 1 + len(id); n > maxStreamName {
		return fmt.Sprintf("makes the stream name %d bytes long, the limit is %d", n, maxStreamName)
	}
	return checkType(id)
}
