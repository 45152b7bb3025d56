package pmd

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/pmd-dev/pmd/internal/engine"
)

// Sentinel errors. Every error the store returns for one of these conditions matches it
// with errors.Is, and carries the stream, event or argument it is about in a typed error.
var (
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	ErrDuplicateEvent       = errors.New("duplicate event")
	ErrEventNotFound        = errors.New("event not found")
	ErrStreamNotFound       = errors.New("stream not found")
	ErrInvalidArgument      = errors.New("invalid argument")
	ErrClosed               = errors.New("store closed")
	// ErrUnavailable is matched by a write that failed because the store cannot write
	// now (disk full, I/O error). Nothing of it was written; the store recovers by itself
	// once the cause is gone, and Problems says what it is meanwhile, unless the error
	// also matches ErrNeedsRestart.
	ErrUnavailable = errors.New("unavailable")
	// ErrNeedsRestart is matched, beside ErrUnavailable, by a write refused because the
	// store stopped writing until it is opened again: its index could not take a batch
	// already durable in the log (or, on a cluster node, a replicated write could not be
	// applied). It does not recover by itself: a caller that waits out ErrUnavailable
	// (a full disk) should give up on this one, so that the store is restarted. Problems
	// says so (/healthz, pmd_health_problems), and Store.WritesStopped is closed: pmd
	// serve exits then, for its supervisor to start it again, whether or not it runs
	// process managers or subscriptions (which fail on it).
	ErrNeedsRestart = errors.New("writes stopped until a restart")
	// ErrCorrupt is matched by a read that met a damaged record; the error is a
	// *CorruptError naming it. Records after it stay readable.
	ErrCorrupt = errors.New("corrupt")
)

// Errors of Open. They are the data directory owner's own values, so that errors.Is and
// errors.As on Open's error work from this package without reaching beneath it.
var (
	// ErrLocked is matched by Open's error for a directory another process has open;
	// the error is a *LockedError naming that process where it is known.
	ErrLocked = engine.ErrLocked
	// ErrFormat is matched by Open's error for a directory of a format this version of
	// pmd cannot read (written by a later version).
	ErrFormat = engine.ErrFormat
	// ErrPartOfStore is matched by Open's error for a directory that holds no store but
	// is part of one (a store's log or index directory, or one holding log segments),
	// named as the data directory by mistake: Open makes no new store there.
	ErrPartOfStore = engine.ErrPartOfStore
)

// LockedError is Open's error for a directory another process has open: Dir, and PID,
// the process holding its lock (0 where the system does not tell).
type LockedError = engine.LockedError

// LostLogError is Open's error for a directory that holds a store's index or id but
// whose log lost every segment: Open refuses it rather than start an empty store there.
// It matches log.ErrCorrupt (the store is damaged), not ErrCorrupt, which a read matches.
type LostLogError = engine.LostLogError

// WrongExpectedVersionError is returned when a write's expected version does not hold.
type WrongExpectedVersionError struct {
	Stream   string
	Expected ExpectedVersion
	// Actual is the version of the stream's last event, shown or hidden by its retention;
	// -1 if it has none (never written, or deleted since its last write).
	Actual int64
}

func (e *WrongExpectedVersionError) Error() string {
	actual := fmt.Sprint(e.Actual)
	if e.Actual < 0 {
		actual = "no_stream"
	}
	return fmt.Sprintf("wrong expected version for stream %q: expected %s, actual %s", e.Stream, e.Expected, actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) hold.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// DuplicateEventError is returned when an event id is already stored, or an event is
// already in the stream it is linked into.
type DuplicateEventError struct {
	ID     uuid.UUID
	Stream string // the stream written to
}

func (e *DuplicateEventError) Error() string {
	return fmt.Sprintf("duplicate event %s in stream %q", e.ID, e.Stream)
}

// Is makes errors.Is(err, ErrDuplicateEvent) hold.
func (e *DuplicateEventError) Is(target error) bool { return target == ErrDuplicateEvent }

// EventNotFoundError is returned for an event id that is not stored.
type EventNotFoundError struct {
	ID uuid.UUID
}

func (e *EventNotFoundError) Error() string { return fmt.Sprintf("event %s not found", e.ID) }

// Is makes errors.Is(err, ErrEventNotFound) hold.
func (e *EventNotFoundError) Is(target error) bool { return target == ErrEventNotFound }

// StreamNotFoundError is returned by reads of a stream that does not exist: never
// written, or deleted since its last write (one whose retention hides all its events
// reads as empty).
type StreamNotFoundError struct {
	Stream string
}

func (e *StreamNotFoundError) Error() string { return fmt.Sprintf("stream %q not found", e.Stream) }

// Is makes errors.Is(err, ErrStreamNotFound) hold.
func (e *StreamNotFoundError) Is(target error) bool { return target == ErrStreamNotFound }

// InvalidArgumentError is returned for input the store refuses; nothing was written.
type InvalidArgumentError struct {
	Arg    string // which argument, e.g. "stream", "events[2].type"
	Reason string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid argument %s: %s", e.Arg, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidArgument) hold.
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalid(arg, format string, a ...any) error {
	return &InvalidArgumentError{Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// UnavailableError is returned for a write the store could not make now; Cause says why
// (errors.Is(err, syscall.ENOSPC) holds for a full disk). Nothing of the write is stored.
type UnavailableError struct {
	Cause error
	// NeedsRestart says that the store stopped writing until it is opened again, rather
	// than until the cause is gone (ErrNeedsRestart).
	NeedsRestart bool
}

func (e *UnavailableError) Error() string { return "store unavailable: " + e.Cause.Error() }

// Is makes errors.Is(err, ErrUnavailable) hold, and errors.Is(err, ErrNeedsRestart) when
// NeedsRestart is set.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrUnavailable || (e.NeedsRestart && target == ErrNeedsRestart)
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Cause }

// CorruptError is returned by a read that met a damaged log record. A read that starts
// after it goes on: Position (and, in a stream read, Version) says where to skip. Damage
// that hides a run of records (a sealed segment that cannot be framed past a record, or
// that ends before the next segment starts, a segment file being missing) is one error
// for the run, outside a stream read: Position is the last position of the run (the
// first in a backward read), so that the next read from after it goes on; the cause
// names the whole run.
type CorruptError struct {
	Position uint64 // the damaged record's position (see above for a run)
	Stream   string // the stream being read, empty for $all, categories and types
	Version  uint64 // the damaged event's version in Stream
	Cause    error  // what the log found
}

func (e *CorruptError) Error() string {
	if e.Stream != "" {
		return fmt.Sprintf("damaged record at position %d (version %d of stream %q): %v", e.Position, e.Version, e.Stream, e.Cause)
	}
	return fmt.Sprintf("damaged record at position %d: %v", e.Position, e.Cause)
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Cause }
