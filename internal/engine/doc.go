// Package engine owns a pmd data directory: its layout, its lock, its format version and
// the upgrade from older ones, opening the log and the index and replaying the log into
// the index, keeping the index flushed, finding damage, and the offline checks and
// repairs that pmd verify and pmd repair print, and scavenging.
//
// A data directory holds:
//
//	FORMAT   "pmd data directory format 5\n"; absent in format 1
//	LOCK     flock(2)ed exclusively by the process that has the store open
//	STORE_ID the store's id, a random UUID made at the first Open (see Engine.ID)
//	log/     the segmented log (package log): the source of truth
//	index/   the index over the log (package index), rebuilt from the log when lost
//	index.rebuild  when present, the next Open rebuilds the index (RebuildFile)
//	index.ahead    when present, the index may be on disk ahead of the log (AheadFile)
//	index.skipped  when present, the index may lack versions skipped records held (SkippedFile)
//
// What it promises:
//
//   - One process at a time: Open fails with ErrLocked while another holds the lock, a
//     *LockedError carrying the holder's pid where /proc/locks tells it (so do Verify
//     and PlanRepair).
//   - A refused Open leaves the directory as it found it: it removes the new store's
//     files it made there (FORMAT, STORE_ID, index/, log/), the lock still held, FORMAT
//     after the rest. It leaves LOCK, made or not: removed, the lock of a process that
//     opened it before and locked it after would be that of a removed file, and another
//     Open would make a new LOCK and lock it too. A LOCK alone is no store (HaveStore).
//   - Open upgrades a format 1 directory (an in-memory index checkpoint, index.ckpt) by
//     building the index from the log once, with progress logged, then writes FORMAT
//     and removes index.ckpt. A crash before FORMAT is written leaves format 1, upgraded
//     again; one after it leaves index.ckpt, which the next Open removes.
//   - Open raises a format 2, 3 or 4 directory to format 5 (FORMAT replaced durably) last,
//     once nothing can refuse it and before the store writes anything, and logs it: what
//     Open writes before (a missing STORE_ID, the index, crash repair's cuts, the void
//     records of a loss, markers) the releases of the directory's format read, so an
//     Open refused or killed before leaves the format as it was (see Format). Format
//     3's log may hold records and flags the releases of format 2 cannot read
//     (retention, erase and gone records, the erased, applied and unsynced flags),
//     format 4's gone records that keep their event's id, which the releases of format
//     3 cannot read (a cluster node's catch-up copy writes a peer's into the log's
//     tail, where such a release would cut it as torn, and every record after it),
//     format 5's commit records with a slot (a cluster node's writes after the first of
//     a Raft entry), which the releases of format 4 cannot read in the same way, so
//     they must refuse the directory, as every release that reads FORMAT (since
//     002178b) refuses a format above its own. Raising 3 or 4 to 5 changes nothing but
//     FORMAT; every store is raised, a single node's too (see Format). A release of
//     format 1 (up to 79a6565, its index in memory) never reads FORMAT: it would open
//     the directory and take those records for damage, so going back to one is
//     unsupported and needs a backup taken before the upgrade. Verify and PlanRepair
//     read formats 1 to 5 and write no FORMAT.
//   - After a crash, Open replays only the log records after the index's durable point:
//     the index is flushed once Options.FlushEvery records are applied above its durable
//     point (a full overlay's hand-off raises it too), Options.FlushInterval after that
//     point last moved, after every replay and at Close, so a crash loop never re-indexes
//     the log.
//     The log is synced before each flush, so the index never gets ahead of the log on
//     disk; with syncing off a power cut can still do that, and Open then rebuilds it.
//     With syncing on only damage does (synced records lost): Open rebuilds the index
//     too, and reports the loss as damage, cutting a torn end below the index only after
//     quarantining the segments it changes, and filling the lost positions with void
//     records after a synced RebuildFile that names the loss, so that a crash before the
//     index is rebuilt is finished by the next Open. A cluster node whose log sync failed
//     before an index flush notes it (AheadFile), which the next Open treats as syncing
//     off; a single node synced what its index applied when it wrote it.
//   - A replay that skips records holding no stream's version any more (damaged, void,
//     gone) notes it in SkippedFile, synced, before the index can put anything after
//     them on disk: a start killed during the replay leaves the index where its last
//     hand-off to disk put it, and the next replay goes on from there, letting a
//     stream's versions jump after them as the killed one would have. The replay that
//     finishes removes the file, and so does one from position 1 (no index on disk the
//     file could speak of) and a repair, which removes the index, and an Open of a
//     single node's format still to be raised whose index holds the position the file's
//     replay was to run to (a release of that format that ignores the file ran since:
//     staleSkipped). A cluster node keeps it: a catch-up copies records from another
//     replica (NewIndexer, which notes its skips in the file too), and the later events
//     of a skipped record's stream may come in a copy after a restart.
//   - An index that cannot be opened is rebuilt from the log.
//   - A directory without FORMAT whose log holds no segment (or is missing) but that holds
//     what only a store leaves beside its log (index.ckpt, STORE_ID, index/) is a store
//     that lost its log: Open refuses it with a *LostLogError, changing nothing, rather
//     than make a new, empty store there; HaveStore takes it for a store, Verify reports
//     it as damage and PlanRepair as damage a repair does not change (Unrepaired).
//   - Nor does Open make a new store in a part of one (ErrPartOfStore): a store's log or
//     index directory named as the data directory, or a directory holding log segments.
//     HaveStore says the same, as no store. A directory named log or index is a store's
//     only when its parent holds a store's files (holdsStore: FORMAT, STORE_ID,
//     index.ckpt, a log with segments): one its user made in a directory that holds none
//     opens as a new store.
//   - Damaged log records (found by the log's Open, by the replay, or by the background
//     scrub of every record that Open starts) are logged once and listed by Problems,
//     with a failed write the log has not yet recovered from. The index skips a damaged
//     record, so everything after it stays readable.
//   - A repair (PlanRepair) of a single node's log that ends below the position the
//     index held on disk (log.RepairPlan.Last: cut there, or ending there with only void
//     records written elsewhere), or whose cut takes positions that records of later
//     synced writes past framing damage in the log's last segment show written
//     (log.RepairAction.Written), leaves a
//     RebuildFile naming the loss before it removes the index: the next Open fills those
//     positions with void records and reports the loss, as above. A STORE_ID that does
//     not read is listed in the plan's Unrepaired, with what to do about it; one this
//     user may not read (fs.ErrPermission) fails the plan, as it fails Verify: no damage.
//   - Scavenge rewrites sealed segments without the bytes of dead and erased events,
//     keeping every position; each segment is swapped atomically.
//
// Package log and package index know nothing of each other: this package joins them,
// and the root package pmd, the public API, uses it.
package engine
