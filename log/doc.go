// Package log is pmd's write-ahead log: an append-only sequence of records at positions
// 1, 2, 3, … kept in a directory of github.com/tidwall/wal segment files.
//
// A record is an event (its full bytes, stored once), a link (a stream name and the
// position of an earlier event), a stream deletion, a stream's retention settings, an
// erasure of a stream's events, a void record that an offline repair put in place of a
// damaged one, or a gone record that a scavenge put in place of a dead event or link
// (void has no content, and gone only the id of the event it replaced; readers go past
// them). The store writes the records of
// one atomic append as consecutive positions and marks the last one Commit.
//
// The log promises:
//
//   - Write is atomic per commit: after a crash at any moment, Open cuts everything after
//     the last valid commit record, so every batch is wholly there or wholly gone. A Write
//     returns once its records are fsynced (unless Options.NoSync), the directory too when
//     a segment file was started. WriteNoSync skips the fsync of the records, for a
//     caller that holds them durably elsewhere (a cluster node, in Raft's log) and calls
//     Sync before it relies on them.
//   - A Write that fails for a cause outside the log (disk full, I/O error) returns an
//     error matching ErrUnavailable that wraps the cause, and none of its records is ever
//     served, nor found by Open after a Close. The Log cuts the files back to the last
//     acknowledged record at once and before the next Write, which succeeds once the
//     cause is gone: no restart is needed, and reads go on throughout. Err reports the
//     failure until a Write succeeds, or a Sync shows writes work again (an fsync of
//     what a full disk holds succeeds, so a Sync after a Write's failure writes and
//     fsyncs a small probe file beside the segments). (As with any failed write, a crash before
//     that cut leaves the batch's bytes for Open, which keeps it if it is whole.)
//   - Nothing damaged is ever served: every read checks the record's CRC-32C and that it
//     is the record of the position asked for, and reports damage as a *CorruptError
//     (errors.Is(err, ErrCorrupt)) naming segment file, offset and position.
//   - Damage is served around, never cut: a damaged record a crash cannot explain (one
//     followed by a valid record of a later Write that no unsynced WriteNoSync preceded,
//     or in a segment that a later segment file follows: every way the log starts a
//     segment syncs the one before first)
//     whose framing holds is kept by Open and listed by Damage; Read of its position
//     fails with its *CorruptError, Read and Scan from the next position go on. Scrub
//     reads the whole log and lists every damaged record, sealed segments included.
//     Only damage that breaks the framing where no offsets file vouches for it makes
//     Open fail with a *CorruptError and change nothing. Options.Keep names a position
//     at or below which Open never cuts.
//   - An offline repair keeps positions: PlanRepair lists what it would do (cut the torn
//     end as Open does, replace each damaged record by a KindVoid record at the same
//     position) and RepairPlan.Apply does it crash-safely, keeping every removed byte in
//     a quarantine file written before any segment changes. Where Open refuses damage
//     in a segment that a later segment file follows, the plan goes past it for the
//     operator to accept: damaged last records become void records, and framing damage
//     or records missing before the next file's name are cut with the later files, the
//     cut naming the positions lost. So is framing damage in the last segment that later
//     synced writes show durable (Open refuses it): the records past it cannot be framed
//     from a known entry start and are cut with it, the cut's Written naming the last
//     position they show written. PlanReplicaRepair, for a cluster node's log, cuts
//     instead of voiding what would follow the last intact commit record (which carries
//     the Raft index the store applied) if Raft writes it again at the next start.
//   - Options.ReadOnly opens a log that no process has open without changing a file, for
//     offline checks: it serves the records an Open would keep and reports what that
//     Open would cut (Repairs) and serve around (Damage); writes fail with ErrReadOnly.
//   - Reading one record costs one pread (a copy from a read-only mapping of the file,
//     for a record up to 64 KiB of a sealed segment), whatever the segment size, once its segment's
//     entry offsets (4 bytes per record) are in memory. The tail's always are. A sealed
//     segment's are kept in a sidecar file, loaded by the first read that needs them
//     (one file read, checked, rebuilt from the segment if it does not fit), and kept
//     for at most Options.MaxLoadedSegments segments, the least recently read dropped:
//     memory for offsets is bounded by that and the tail, whatever the log's size.
//   - Open reads only the tail segment(s) it repairs: a sealed segment's record count
//     comes from the file names and its size from stat, and neither it nor its sidecar
//     is read, so Open costs the same for a log of any length. A sealed segment whose
//     framing does not give the count the names imply is found by the reads that load
//     its offsets or scan it to its end: the records it frames are served, up to the
//     last entry that holds the record of its position (a damaged length prefix can
//     frame the entries after it at the wrong offsets; an entry before that one that
//     fails only its checksum is damaged alone), and the reads of the
//     positions after them fail with a *CorruptError naming the segment and the run of
//     positions it hides (Position to End-1). What such a load finds is kept as a
//     table is, so the segment is framed once, not once per read of it.
//
// The on-disk format (entry framing, record header, msgpack bodies, sidecar files) is
// described byte by byte in FORMAT.md next to this file.
package log
