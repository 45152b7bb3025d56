// Package index maps streams, event ids, categories, event types and the relations between
// events to log positions, on disk. It holds no event bytes: the store reads those from the
// log. It knows nothing of the log either: its owner (internal/engine) feeds it records.
//
// The index is a pebble LSM with its own write-ahead log off: the log is the source of
// truth. The writer (one at a time) collects the records of one or more log writes, in log
// order, in a Batch (AddEvent, AddCausation, AddLink, DeleteStream, SetRetention, Erase,
// Advance) and applies
// it with Apply; readers see a batch whole or not at all. The index records what it is
// given: checking the contract (expected versions, unique ids, links to stored events) is
// the store's job. A writer that read a stream's state to check a record against it
// (Load) hands that state to the batch that indexes the record (Know), which then does
// not read it again.
//
// What it promises:
//
//   - A stream's versions are 0, 1, 2, …; each is the position of an event, written to the
//     stream or linked into it (the event's position, never the link record's), marked as a
//     link or not. Deleting a stream hides every version it has, and its retention (a
//     floor that only moves up) hides the versions below it; versions are never reused.
//   - An event no stream shows any more is dead (Dead, DeadIn): the batch that hides its
//     last version marks it. Lookup does not find a dead event (LookupAny does), and
//     categories (the part of a stream name before the first '$'), event types and
//     Caused, which list positions ascending, leave dead events out.
//   - Erased reports the erase marks of a stream, kept in memory for every read.
//   - LinkedInto lists the streams an event was linked into and is still visible in, in
//     link order; Links gives its links one at a time from a position on, those hidden
//     since marked, so that a page of them costs in proportion to the page; Caused lists
//     the events that named it as their causation parent.
//   - Memory is bounded by Options.CacheSize (the block cache), the overlays (the newest
//     entries, in Go structures: about 16 MiB each, the one taking batches and at most
//     four full ones waiting to be handed to pebble) and at most four memtables
//     (Options.MemTableSize), whatever the number of events; a read costs a lookup in the
//     overlays and the cache or a few small disk reads. Metrics reports the overlays.
//   - A hand-off that fails (a full disk, an I/O error) is logged like pebble's
//     background errors, counted (Metrics.HandOffFailures) and tried again after a wait
//     that doubles up to 30 s; its overlay stays, so reads stay right, and Flush fails.
//     While four full overlays wait, Apply never waits for them: the active overlay keeps
//     taking batches beyond its size instead of freezing more, so the memory above the
//     bound is the batches applied while the hand-offs fail (the log, on the same disk,
//     fails its writes first when the disk is full), and the first hand-off that succeeds
//     again lets the next Apply freeze it.
//   - Durability: Apply puts a batch in memory (the active overlay, overlay.go). Flush
//     writes everything applied to disk and returns its position (Durable); a full
//     overlay is also handed to pebble by itself, in the background, as one table that
//     pebble ingests. Whatever survives a crash is the index after some batch, and
//     Position says which, so the owner replays the log after it.
//   - Damage: a read that meets a block failing its checksum, or an entry breaking the
//     layout, fails with an error matching ErrDamaged and is reported to Options.OnDamage;
//     Check reads every entry. A damaged index is rebuilt from the log by its owner.
//   - Diff compares two indexes entry by entry, so a rebuilt index can be checked against
//     one on disk.
//   - Counts says how many events and existing streams the index holds, without reading
//     it: each Apply moves two counters, from a base that one background pass over the
//     id and stream entries sets after the first call. Nothing of it is on disk.
//
// The key layout is in FORMAT.md.
package index
