// Package pmd is an append-only event store with an embedded process manager.
//
// Every event is written once, into the stream it was appended to, at a position in the
// global log ($all). It can then be linked into any number of other streams: a link is a
// small log record pointing at the event's position, and a stream is a list of such
// positions, so replaying a short stream out of a large log reads just its own events.
//
// The store promises (docs/semantics.md in the repository has them in full):
//
//   - An Append or Link is atomic: after any crash either all of its records are in the
//     log or none is.
//   - An acknowledged Append or Link is on disk (fsync) unless the store was opened with
//     Options.NoSync. Concurrent writers share fsyncs (group commit).
//   - Event ids are unique store-wide; an exact retry of an earlier append (same stream,
//     same ids, same order) succeeds without writing and returns the original result.
//   - Expected versions are checked atomically: of two concurrent appends with the same
//     expected version exactly one wins.
//   - Subscriptions deliver the stored events and then live ones, with no gap and no
//     duplicate at the hand-over.
//   - Memory does not grow with the store: the index is on disk, with a cache bounded by
//     Options.CacheSize. Open replays only the log written after the index's last flush,
//     and index maintenance never holds up writers or readers.
//   - A damaged record is reported (Problems) and never served; the events around it stay
//     readable. A failed write (disk full) is refused with ErrUnavailable, and writes
//     resume by themselves once the cause is gone.
//
// Errors are values: use errors.Is with ErrWrongExpectedVersion, ErrDuplicateEvent,
// ErrEventNotFound, ErrStreamNotFound, ErrInvalidArgument, ErrUnavailable (with
// ErrNeedsRestart for a store that stopped writing until it is opened again), ErrCorrupt
// and ErrClosed, or errors.As with the typed errors to learn which stream, event, argument or
// position an error is about.
package pmd
