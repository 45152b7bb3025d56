// Package pm runs process managers (sagas) whose state is event sourced from their own
// stream in a pmd store.
//
// A process manager waits for the events of one process — in the catering example,
// CustomerConfirmedMenu and CatererConfirmedMenu with the same order_id — and issues
// commands once enough of them have happened. Its state is not a table: every event it
// handles is linked into the process stream "<Name>$<process id>", every command it
// issues is written there too, and the state is the replay of that stream.
//
// # Defining one
//
// A Definition names the event types it handles, finds the process id in an event
// (DataField covers the common case), and gives Init, Apply and Decide: the state of a
// process is Init then Apply over its stream; Decide says what should be issued given
// the state. Decide may return commands that were issued already: each command has a
// Key (its Type unless set), and a process issues each key at most once, so
//
//	if s.Customer && s.Caterer {
//		return []pm.Command{{Type: "ConfirmOrder", Data: data}}
//	}
//
// issues ConfirmOrder once however many more events come. A Command with an At is a
// deadline: it is issued at At unless by then Decide no longer returns it ("by then" is
// on the events stored before At: see Time). Deadlines are
// written into the process stream (DeadlineScheduled), fire once (DeadlineFired with the
// command, in one write), and are cancelled, with a DeadlineCancelled record, as soon as
// Decide stops returning them — typically because the process completed.
//
// Package pmtest tests a definition with plain facts and no store, in one order or in
// every order; Memory is the in-memory runner it uses, which decides exactly as the
// runtime does.
//
// # Running one
//
// New and Run run a definition on a store. What Run promises, across restarts and
// crashes at any point:
//
//   - Every handled event is linked into its process stream exactly once, and events of
//     one process are handled in log order. Processes are independent: they are spread
//     over Options.Workers goroutines by a hash of their id, so that many of them share
//     each group commit.
//   - Handling an event is one atomic Write to the process stream: the link to the event
//     and the records the decision produced, expecting the version the process was
//     folded at. Either all of it is in the store or none of it; a conflicting writer
//     makes it fold again and retry. Events of one process that are queued together
//     share a write, up to the first whose decision writes records (those are read
//     back, so that Apply sees them exactly as a replay would). An event found in its
//     process stream already (a redelivery after a restart or a crash) is skipped, so
//     no event is linked twice and no decision is made twice; the store's index says
//     so (pmd.Store.Contains), never a read of the stream.
//   - The records the runtime writes have deterministic ids: a UUIDv5 of the process
//     stream and the version the record lands at, in a namespace made of the store's
//     id (pmd.Store.ID). A command's id is therefore stable, and delivered with the
//     command so that a receiver can drop duplicates; and two stores never issue the
//     same command id, so a receiver shared by two stores, or fed by a store that was
//     wiped and started again, drops no real command as a duplicate. Records written
//     before stores had ids keep the ids they have; a command is issued once per
//     process by its key, whatever its id.
//   - Only records with those ids count as the runtime's, in the process streams and
//     in the deliveries streams (whose records get such ids too): a record another
//     writer appends in the form of a command, a deadline record or a delivery record
//     (whatever its pm_kind) issues nothing, marks no key issued and ends no command;
//     Apply sees it like any event of the stream. Records written by earlier versions
//     count below the manager's legacy mark, a checkpoint its first start on this
//     version writes (FORMAT.md).
//   - Each record carries metadata causation_id (the handled event, or for a deadline the
//     DeadlineScheduled record that set it), correlation_id (that event's correlation_id,
//     or its id), pm_kind and pm_key (see MetaKind).
//
// The resume position. Run subscribes to the handled types of $all from a position
// below which every handled event is known to be done. Handling is idempotent, so any
// lower bound is correct; the question is only how much is read again after a restart.
// The log cannot give that bound cheaply: which events a process manager has handled is
// only visible in the process streams, and finding the oldest unhandled event would mean
// replaying every process. So the runtime persists the bound: it appends it to the
// stream "<Name>.checkpoint" (event type Checkpoint, data position and the handled
// types) whenever it has moved Options.CheckpointEvery positions and when Run returns.
// The bound is the lowest position still in flight, so it never passes an event that
// is not done; a checkpoint that is lost or stale only makes the next Run read more
// (the first one holds the legacy mark, which stands when its stream is deleted or
// retention hides it: the runtime finds it dead too, and once a scavenge has removed it,
// its own position stands for the cutoff it held; FORMAT.md).
// A checkpoint says nothing of the types it was not written for: a Run whose
// Definition.Handles has a type the checkpoint lacks reads the log from the start.
//
// Everything else is derived from the log when Run starts: it reads the records the
// runtime wrote (category <Name>) for the pending deadlines, the commands not delivered
// yet and the status of every process. That read is proportional to the number of
// records, a few per process.
//
// Events of a handled type that belong to no process (ProcessID says so, or the id
// cannot name its streams: empty, control characters, or too long for the longest,
// "<Name>.deliveries$<id>", to fit in 256 bytes) are counted, logged and skipped (see
// Monitoring). A process whose stream a store written by an earlier version already
// holds goes on though, if "<Name>$<id>" is a stream name: "." and "..", which only HTTP
// cannot name, and ids up to 256 bytes with "<Name>$". Such a long one goes on without
// the streams that cannot be named: it is folded without snapshots, removed without
// a marker, and its commands are not delivered (no attempt could be recorded): each is
// counted in Stats.Undeliverable and the first of each process logged, for an operator
// to deliver by hand. A Decide result the runtime refuses (a key returned twice, a
// command without a type, data the store cannot encode) is a bug in the definition:
// Run stops with an error matching ErrInvalidDefinition, having written nothing for it.
//
// When the definition panics. A panic in Init, Apply or Decide is a bug of the
// definition about one process (often an event it did not expect): the runtime recovers
// it, logs it at ERROR with the process id and the stack (at most one such line a
// minute, saying how many were not logged since: an event no process expects may hold
// them all), counts it (Stats.Panics), and holds the process for the rest of Run:
// none of its pending links is written, nothing is decided on its half-applied state
// and none of its commands is issued; its later events and deadlines wait too. The
// other processes go on. The checkpoint stays below the first event held, so the next
// start, which may run a fixed definition, folds the process again and handles those
// events (the events of other processes read again are found linked already). A
// command is never issued twice: one written before the panic (Apply panicked at the
// records of a decision just written) counts as issued, and is delivered. Process,
// ProcessPage and List show the process with the panic (Panic) and the state before
// it, whether their own fold panics or the running manager holds it; one held at its
// first event, which has no stream (nothing of it was written), with no event and
// Version -1.
// A panic in ProcessID or NoProcessID leaves the event's process unknown, and any later
// event may be of that process: the manager holds at that event, handling no later one
// (nor checking a deadline, nor removing a process) until Run starts again, so that the
// next start handles it in log order; every process waits meanwhile. It is logged at
// ERROR with the event's position and the stack, counted (Stats.Panics), and the lag
// grows (Stats.Lag); WaitIdle and WaitHandled return it (an error matching *PanicError)
// once the events before it are handled. Commands issued already are still delivered.
// Memory returns a panic of Init, Apply or Decide as a *PanicError, and holds the
// process as Run does, from its first event on: its later Handle and Advance return the
// same one, and Memory.Process shows it with the panic. As in Run, the other processes
// go on: Advance fires their due deadlines past a held one, returning their commands
// with the first panic.
//
// A damaged record (a bad sector; the store lists it in its problems until a repair) of
// a handled type is logged and passed over: its process goes on without the fact. So is
// a fact damaged after it was linked, when its process is folded from the store again
// (a snapshot that covers it still holds it). A damaged record of the runtime's own (a
// command, a deadline) stops Run: passing it over could issue again what it issued.
// Process, ProcessPage and List pass over a damaged record of the process stream, of
// either kind, listing its version in Process.Damaged (counted in
// ProcessSummary.Damaged; one of the runtime's own is logged once at ERROR), so that
// the process can be looked at before the repair; one of the runtime's own that the
// store says was erased (Store.Erased) shows the process erased, as reading it erased
// does. A
// damaged record of a deliveries stream is passed over when Run starts: at worst its
// command is attempted again though it was delivered, parked or skipped (at once, if
// the record held its retry time).
//
// # Long processes: the cache and snapshots
//
// An event must cost the same however long its process is, so the runtime does not
// replay a process stream per event. It keeps the fold of the processes it handled last
// (state and bookkeeping, after the version folded) in memory, at most
// Options.CacheSize of them, and folds a new event onto it; the expected version of the
// write proves the fold current, and a failed write drops it. A process that is not in
// the cache (after a restart, or pushed out by others) is folded once from the store.
//
// So that such a fold is short too, every Options.SnapshotEvery events the fold is
// appended to the stream "<Name>.snapshots$<process id>" as a Snapshot record: the
// version it covers, the state encoded with msgpack, the runtime's bookkeeping, and a
// fingerprint of Definition.Version and of the shape of the state type. A fold starts
// from the newest snapshot with this definition's fingerprint that belongs to the
// stream's current life (not one from before a deletion of the stream), then folds the
// events after it; without one it starts at the first event, as a store written before
// snapshots existed does. Snapshots are written after the write they cover, on their
// own: a crash between the two only leaves the previous snapshot the newest, and a
// snapshot that is missing, damaged or distrusted only makes a fold longer.
//
// Not every state can be snapshotted. A state type is encoded with msgpack, exported
// fields only, and each snapshot is checked to decode back to a state equal to the
// live one (reflect.DeepEqual; typed time.Time values come back in UTC, as event
// timestamps are). A type with unexported fields, functions, channels or non-empty
// interfaces, or a state that fails the check (the manager logs why, once), gets no
// snapshots: its processes are still cached in memory, and folded from the start of
// their streams when they are not. A state with its own msgpack coder (EncodeMsgpack,
// MarshalMsgpack) that panics fails the check; a snapshot whose decoding panics
// (DecodeMsgpack, UnmarshalMsgpack) is passed over as one that does not decode.
// Change Definition.Version whenever Init or Apply change what the same events fold
// to; a change of the state type's fields changes the fingerprint by itself.
//
// # Delivering commands
//
// With Options.Deliver set, a dispatcher reads the issued commands from category <Name>
// and hands each to the handler until the handler returns nil: at least once, with the
// command id.
//
//   - The commands of one process go out in the order they were issued: a command is
//     not handed over before the one issued before it was delivered (or skipped).
//   - Each receiver (Options.Receiver; one by default) has Options.Deliverers attempts
//     at most running at once, each on its own goroutine: a receiver that hangs or
//     fails holds up its own commands, never another receiver's, and a failing command
//     holds up only the commands of its own process behind it. An attempt running for
//     longer than Options.HangAfter stops counting when another process's command
//     waits for a slot and the receiver answered no attempt since it began, so that a
//     hanging command holds up only its own process too; a receiver that answers
//     slowly keeps Deliverers attempts at most, and any receiver runs at most
//     16·Deliverers attempts in all.
//   - A failed attempt (the handler returned an error, or panicked: the panic fails the
//     attempt, and is logged with its stack) is retried after RetryMin·2^(n-1), at most
//     RetryMax, less up to half of it at random (jitter); an error that asks for a
//     longer wait (a webhook's Retry-After: see Handler) waits that long, at most
//     RetryMax. After Options.MaxAttempts failures in a row the
//     command is parked: not attempted again until Retry queues it again or Skip gives
//     it up. Parked lists the parked commands.
//   - The commands queued for delivery (failing, parked, behind another) hold at most
//     Options.QueueBytes of their data in memory per manager, encoded as the store
//     keeps it; past it a command holds its id and place only, and each of its
//     attempts reads its record again; a record no longer stored (its process stream
//     deleted, or expired by retention), damaged or erased fails the attempt ("read
//     the command again: ..."), which is retried and parked as any, for Skip: a
//     command never goes out under its id with another body.
//   - Every attempt, parking, retry and skip is appended to the stream
//     "<Name>.deliveries$<process id>" (CommandDelivered, CommandDeliveryFailed,
//     CommandParked, CommandRetried, CommandSkipped) before it takes effect, so Run
//     rebuilds the dispatcher from them after a restart: a failed command is retried
//     at its recorded retry time, not at once; a parked one stays parked; a command
//     with no record is delivered at once. An attempt cut short by Run stopping is not
//     recorded, and made again.
//
// # Retention
//
// With Options.Retention.Completed set, a process is removed that long after it became
// done: it issued a command and has no pending deadline. When it becomes done, the
// write that makes it so also carries a ProcessCompleted record with the manager's
// clock time, and the timer that fires deadlines schedules the removal; the load at
// Run's start reads those records with the others of category <Name>, so a removal
// that fell due while no manager ran happens right after a restart, with no extra
// scan. A process that completed while retention was off counts from the store
// timestamp of its last runtime record. A removal waits for the commands of its
// process that are not delivered or skipped yet (it looks again a minute later).
//
// Removing writes the marker "<Name>.removed$<process id>" (one ProcessRemoved event),
// then deletes the snapshots, the process stream (expecting the version folded: a
// concurrent writer makes the process fold and decide again) and the deliveries. The
// handled facts stay in their own streams.
//
// Once per process still holds after removal. An event for a process whose stream does
// not exist makes the worker look the marker up (one index lookup; only new and removed
// processes pay it); with a marker, the event is skipped, with nothing linked or
// issued, counted in Stats.Late and logged at most once a minute. Removed processes
// cost one marker event and its index entry each, and no memory. Counts forgets them.
//
// # Retention of a process stream
//
// A process stream, its deliveries and the removal marker of a removed process belong
// to their manager, metadata included, as the streams a system process of EventStoreDB writes
// are that process's: the state is the replay of the stream, so a record retention hides
// is a record the process no longer knows it wrote, and hiding is final (a later setting
// shows nothing again, and a scavenge removes the bytes). So the store refuses settings
// that hide anything on the streams "<Name>$<process id>",
// "<Name>.deliveries$<process id>", "<Name>.removed$<process id>" and "<Name>.checkpoint"
// (whose first checkpoint holds the mark telling the runtime's records from others') of a
// Manager made on it, whoever asks: New has the store keep them whole (Keep,
// pmd.Store.Keep), and Store.SetRetention or SetRetentionIf then fail with a
// *pmd.KeptWholeError naming the manager (pmd.ErrKeptWhole), PUT
// /v1/streams/{stream}/metadata with bad_request, an admin token too. pmd serve keeps
// those of the managers of its configuration at its start, on every node of a cluster.
// Settings that hide nothing (pmd.Retention{}) are taken: they clear what was set before.
// The other streams of a manager take them (a snapshots stream kept short costs longer
// folds only). Hide a process's records with Options.Retention, which removes whole
// processes once they are done, leaving the marker that keeps them removed. Deleting or
// erasing a manager's stream is not refused: it is a whole-stream operator action, whose
// outcome is given where it is described (docs/retention.md).
//
// Keeping is not recorded in the data directory. Retention set on a process stream all
// the same (before the store kept it: by an earlier release, by a program that made no
// Manager of that name on the store, or by a pmd serve whose configuration did not name
// the manager) hides the records the process folds from, and the runtime reads only
// what its stream shows. A process whose stream shows no record any more goes on from the state it
// starts from, with its versions after the last one its stream assigned: what it issued
// and its pending deadlines are forgotten, so Decide may issue its commands again, and
// its deadlines do not fire. Process, ProcessPage and List show it with version -1 and
// no events. An erased process stays ended (see below). A removal marker hidden so lets
// a late event start its process again, and a hidden CommandSkipped or CommandParked
// record has its command delivered again at the next start.
//
// # Erasing a process
//
// Commands and deadline records carry personal data, so a process stream may be erased
// (Store.EraseStream, POST /v1/streams/{stream}/erase): that erases the data and
// metadata of the runtime's records with the rest, and the runtime can no longer tell
// which commands were issued or which deadlines are pending. Erasing a process stream
// therefore ends the process, for good, as every fold of the stream says (a replay, a
// restart, another node of a cluster): a fold that reads a record of the stream itself
// (not a link) erased marks the process erased. Then:
//
//   - Decide is not asked again: it issues no command, and its pending deadlines are
//     dropped, never fired. A command issued before the erasure and not delivered yet
//     is no longer read as one after a restart (its record lost its metadata) and is
//     not delivered then; a manager that has it queued already may still deliver it
//     if it was queued holding its data (one past Options.QueueBytes parks instead:
//     its process stream was erased), and lists it, if it is parked, without its data
//     (Parked).
//   - A later event of the process is not linked and starts nothing: it is skipped,
//     counted in Stats.Late and logged at most once a minute, as for a removed process.
//     The records written into the stream after the erasure (by anyone) do not revive it.
//   - It counts as completed (Status, Counts, Process.Erased and ProcessSummary.Erased
//     say it was erased), Process and ProcessPage show no state (State and each of
//     States are nil: it held what the erasure was for), and retention removes it
//     Retention.Completed after the store timestamp of the last record of the stream
//     itself (the erased ones included).
//     Counts moves it as soon as the manager finds it erased: when it folds it from the
//     store (not cached, or evicted), or when a cached fold is about to decide (below).
//     The manager keeps where Counts has each process with deadlines pending (their
//     keys went with the metadata), and tells where any other stood from the types of
//     its erased records (a DeadlineFired: expired; a command: completed; neither: open).
//
// Apply still sees the erased records, with their types and nil Data and Metadata, as it
// sees any event. A snapshot written before the erasure is not used (it holds the
// state folded from the data erased): the fold reads the first record of the stream
// itself, which an erasure always erases if it erases any, and folds from the first
// event when it reads erased. A manager that has the process cached when the erasure
// comes reads that record too before it writes what Decide returned, and folds again
// (Counts moves the process to completed then); until then it may link events it
// handles, which change nothing. It reads that record once more after the write: an
// erasure does not change the stream's version, so one that lands between the read and
// the write lets the write through, after it. The manager then erases the stream again,
// so that what it decided on the erased state is erased too, and folds again; its
// commands are not handed to delivery, but another process's command written in that
// moment may wake delivery, which then reads them from the log before the second
// erasure and may deliver them. Erasing a stream that holds only links (a process that
// wrote nothing yet) erases nothing and changes nothing. The snapshots stream
// "<Name>.snapshots$<process id>" holds the state of the process, so erase or delete it
// too: processes fold from their streams without it, and the manager writes no
// snapshot of an erased process.
//
// Erasing the stream of a fact a process linked (a customer's stream) does not end the
// process: the link reads erased, and Apply gets the fact without its data on every fold
// from then on. No view (Process, ProcessPage) and no fold from the store shows a state
// folded from the erased data: a snapshot lists the streams of the facts it folded (the
// first fact linked from each), and one whose fact reads erased now is not used, the
// process being folded from its first event and snapshotted again as it grows. That
// costs every fold from a snapshot (a process not in the cache, every view, every
// process a List page looks at) one one-event read per stream listed: ProcessPage of a
// process with facts from 100 streams takes about 100 ms where it took 10 ms. For a
// process of facts from more than 100 streams, or a snapshot written before snapshots
// listed them, the fold reads every link the snapshot covers instead (and a process of
// facts from more than 100 streams never uses its snapshots again once one of its facts
// reads erased). A fact the manager read with its data that still waits to be handled
// when its stream is erased is linked, folded and decided on erased, as every fold from
// the store has it then: the worker asks the store (Store.Erased, an in-memory check
// for a stream never erased) about each fact before it folds it (TestQueuedFactErased);
// a fact erased after that check is found by the check below. A manager
// that has the process cached when the erasure comes checks, before it writes what
// Decide returned and before it writes a snapshot, the first fact it folded with its
// data from each stream (one read per stream), and folds the process again when one
// reads erased: it then decides on the facts as every fold from the store has them
// (TestACachedProcessDoesNotDecideOnAnErasedFact, TestACachedProcessSnapshotsNoErasedFact).
// It reads them only when the store has applied an erasure since the fold, or since
// its last check found none (pmd.Store.Erasures, which every node of a cluster counts
// as it applies one): a store that erases nothing pays no read for it, one that erases
// pays it once per cached process and erasure
// (TestACachedProcessChecksItsFactsOnlyAfterAnErasure).
// Until then Decide may be asked on the cached state, and what it decides is not
// written. An erasure that lands between that check and the write is not seen by that
// decision; and a cached process of facts from more than 100 streams is not checked:
// it decides on the cached state, the erased data with it, until it folds again
// (evicted from the cache, or at the next start). Snapshots hold the data on the disk until their
// stream is erased or deleted: erase or delete "<Name>.snapshots$<process id>" of each
// process the facts are linked into (Store.EventStreams lists them). A snapshot written
// before snapshots listed their facts' streams is checked by that read of every link it
// covers, from which the fold learns the streams: the snapshots written from it list
// them (TestErasedFactsLeaveTheProcessView, TestOldSnapshotGainsSources,
// TestSnapshotListsTheFirstFactOfAStream).
//
// # Subscriptions
//
// A Subscription delivers the events of a Filter (types of the global log, one stream,
// or one category) to an EventHandler, at least once and in log order, from a position
// it keeps in the stream "<name>.subscription": a restart resumes there (one with
// another filter may start over: see Subscription). It runs on the
// same dispatcher as commands: its events share one ordering key, so a failing event
// is retried with back-off, parked after MaxAttempts failures in a row, and holds the
// subscription back until it is delivered or an operator retries or skips it
// (Subscription.Retry, Subscription.Skip). Failures, parkings, retries and skips are
// written before they take effect; a delivered event only moves the position, written
// at most every SaveEvery and when Run returns, so a crash delivers again what went
// out since. Each Subscription has its own dispatcher: a receiver that hangs delays no
// other subscription and no process manager. A full disk does not stop it either: a
// position is written later, and a failure or parking waits for its record to land
// (Subscription.Run).
//
// # Monitoring
//
// Stats says how far the manager is behind the log (Lag), how many handled events
// belonged to no process (Unmatched, by type: the correlation field was missing, or
// the process id cannot name a stream), how many commands are parked, and how many
// processes retention removed and late events (of removed or erased processes) it
// skipped since Run started, and how many commands it could not deliver
// (Undeliverable: of processes an earlier version took, whose ids are too long), and how
// many panics of the definition held a process or an event (Panics). Unmatched
// events are also logged, at most once a minute per type. Options.OnAttempt sees every
// delivery attempt, for metrics per receiver.
//
// # When the store cannot write
//
// A full disk does not stop Run: a write the store refuses as unavailable
// (pmd.ErrUnavailable: a full disk, an I/O error; nothing of it is stored, and the store
// recovers by itself once the cause is gone) is waited out. A process whose links and
// decision cannot be written holds, and the same write is made again, backing off up to
// a second, until it lands: nothing is decided or issued twice, and its events keep their
// order. So do a removal (Retention), the erasure made again after a decision write
// that met one (Erasing a process), and the legacy mark a start writes; a delivery
// attempt waits for its record to land before its command is attempted again or the
// next goes out; a checkpoint or a snapshot not written is written later (a stale
// checkpoint only makes the next start read more). Retry and Skip return the store's
// error at once. A WARN says so at most once a minute, advising to free the disk only
// when the cause is the disk's (a file's error): a cluster node that has no leader, is
// not the leader or was removed refuses writes too, and the last checkpoint (or
// position) of a manager (or subscription) such a node stops, as it stops or loses its
// leadership, is refused so routinely that it is logged at INFO. Run still returns as
// soon as its ctx ends. Any other failure of a write stops Run as before, and so does a store that
// stopped writing until it is opened again (pmd.ErrNeedsRestart: its index could not
// take a write already in the log), which does not recover by itself, whatever the
// write it refuses (a checkpoint's or a snapshot's too).
//
// # Time
//
// Deadlines, retries and retention follow Options.Clock, the wall clock by default; tests move a
// pmtest.Clock by hand and wait with WaitIdle instead of sleeping.
//
// A deadline due at D is decided on exactly the events stored before D, by the store's
// timestamps (in a cluster, the leader's clock), however late the manager handles them:
//
//   - An event is decided at the time it was stored, not when a worker gets to it. A
//     deadline of its process due by then fires first, in a write of its own, on the
//     events stored before; then the event is linked. A deadline Decide sets due after
//     the event waits, even if the clock is past it; one due by then fires at once.
//   - The timer fires a deadline once the clock reaches it, with a deadline check queued
//     to the worker of its process behind every handled event in the store at that
//     moment: the reader first puts them all in the worker queues, and a worker handles
//     the tasks of one process in queue order. An event stored later bears a later
//     timestamp, so every event stored before the deadline is decided before it. The
//     check decides as of that moment, however late the worker gets to it: a later
//     deadline of the process that fell due meanwhile gets a check of its own, behind
//     the events stored before it. After a restart with a backlog, no deadline fires
//     until the reader has queued the backlog.
//
// So a process is decided the same whether the manager ran all along or was stopped, and
// as Memory decides it: Memory.Handle decides at the event's Timestamp and Advance fires
// the deadlines due.
//
// # Queries
//
// Process, Processes and Deliveries read the store, so they answer whether or not the
// Manager runs. Processes folds each process from its newest snapshot. Counts is kept in memory by Run: loaded at start, updated as the
// runtime writes. A process is open until it issued a command and has no pending
// deadline (completed), or one of its deadlines fired (expired); an erased one is
// completed (see Erasing a process). Deleting process
// streams while Run runs leaves Counts stale until the next Run.
//
// The event types and metadata of every record the runtime writes are listed in
// FORMAT.md.
package pm
