package pm

import (
	"fmt"
	"runtime/debug"
)

// A PanicError reports that a callback of a Definition (Init, Apply, Decide, ProcessID
// or NoProcessID) panicked: a bug in the definition about one process, or one event.
// The runtime recovers it, logs it with its stack, counts it (Stats.Panics) and holds
// the process (for ProcessID and NoProcessID, the whole manager, at the event) until Run
// starts again; see the package doc, "When the definition panics".
type PanicError struct {
	Stream   string // the process stream, "<Name>$<id>"; "" for ProcessID and NoProcessID
	Callback string // "Init", "Apply", "Decide", "ProcessID" or "NoProcessID"
	// Version is the version of the event Apply panicked at (the one it would have
	// had, for a handled event not linked yet); -1 for the other callbacks.
	Version int64
	Value   any    // what the callback panicked with
	Stack   string // where
}

func (e *PanicError) Error() string {
	where := e.Stream
	if where == "" {
		where = "event"
	}
	if e.Version >= 0 {
		return fmt.Sprintf("pm: %s: %s panicked at version %d: %v", where, e.Callback, e.Version, e.Value)
	}
	return fmt.Sprintf("pm: %s: %s panicked: %v", where, e.Callback, e.Value)
}

// Is makes errors.Is(err, ErrInvalidDefinition) hold: it is a bug in the definition.
func (e *PanicError) Is(target error) bool { return target == ErrInvalidDefinition }

// catch, deferred, recovers a panic of callback into *into, unless *into holds one
// already: the first says what went wrong.
func catch(stream, callback string, version int64, into **PanicError) {
	r := recover()
	if r == nil {
		return
	}
	if *into == nil {
		*into = &PanicError{Stream: stream, Callback: callback, Version: version, Value: r, Stack: string(debug.Stack())}
	}
}
