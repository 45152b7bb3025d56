// Package index keeps, in memory, which log positions belong to which stream, event id,
// category and event type. It holds no event bytes: the store reads those from the log.
//
// The store feeds the index every record it writes, in log order, once it is durable, with
// AddEvent (followed by AddCausation for an event whose causation parent is stored),
// AddLink, DeleteStream or Advance; on open it loads the last checkpoint and feeds the
// records written after Position. The index records what it is given: checking the
// contract (expected versions, unique ids, links to existing events) is the store's job.
//
// What it promises:
//
//   - A stream's versions are 0, 1, 2, …; each is the position of an event, written to the
//     stream or linked into it (the event's position, never the link record's), marked as a
//     link or not. Deleting a stream hides every version it has; versions are never reused.
//   - Categories (the part of a stream name before the first '$') and event types list the
//     positions of their events, ascending. Deleting a stream removes its events from
//     neither, nor from the ids.
//   - An event's links are kept by event too: LinkedInto lists the streams it was linked
//     into and is still visible in, in link order, for a hash lookup and a Contains per
//     link. Caused lists the events that named it as their causation parent, in log order,
//     for a hash lookup and a step per event. Only linked events and events with a parent
//     take memory for this: about 25 bytes per link (hidden ones too) or causation.
//   - Readers never mutate, so any number may run at once under the store's read lock.
//     A read costs a hash lookup (plus, for categories and types, a binary search) and the
//     page it returns. Contains scans at most 255 versions, and looks longer streams up in
//     a hash set. Listing stream names is a binary search and the page: names are kept
//     sorted as streams are added.
//   - Memory is about 68 bytes per event, ids and relations included, on the workload of
//     BenchmarkMemory (1M events in 100k streams, a link every 10 events), and about 81
//     with a causation parent for every other event: no heap object per event, strings
//     only per stream, category and type. A stream costs about 150 bytes more.
//   - A checkpoint (WriteTo, SaveCheckpoint) holds the whole index. Loading one (ReadFrom,
//     LoadCheckpoint) either gives back exactly the index saved or fails with
//     ErrBadCheckpoint; it never panics on damaged input. SaveCheckpoint replaces the file
//     atomically. The layout is in FORMAT.md.
//   - Diff compares two indexes on everything they hold and names the first difference:
//     a checkpoint can be checked against an index rebuilt from the log.
package index
