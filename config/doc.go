// Package config reads the daemon's config file: the process managers and the
// subscriptions that `pmd serve` runs without any Go code (its reference is docs/config.md
// in the repository).
//
//	processes:
//	  - name: CateringMatch              # process streams are CateringMatch$<process id>
//	    correlate_by: order_id           # the data field that holds the process id
//	    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
//	    complete_when: all               # all, any, or an expression over the state
//	    issue:
//	      type: ConfirmOrder             # its data holds the process id under correlate_by
//	      data:                          # optional: more fields, each an expression
//	        guests: state.data.guests ?? 0
//	    deadline:                        # optional
//	      after: 48h
//	      issue: {type: CancelOrder}
//	    deliver:                         # optional: POST each command, at least once
//	      webhook: http://127.0.0.1:9000/commands
//	      max_attempts: 10               # optional: failures in a row before a command is parked
//	      timeout: 10s                   # optional: the longest one attempt may take
//	      queue_bytes: 64MiB             # optional: command data held in memory while queued (0: none)
//	    cache: 10000                     # optional: processes whose state is kept in memory
//	    snapshot_every: 1000             # optional: events between snapshots of a long process
//	    retention:                       # optional: remove done processes
//	      completed: 720h                # this long after they are done
//	subscriptions:                       # optional: events to a webhook, with a server-side position
//	  - name: billing                    # its stream is billing.subscription
//	    types: [ConfirmOrder]            # or stream: S, or category: C; exactly one
//	    deliver: {webhook: http://127.0.0.1:9001/events, max_attempts: 10}
//
// Load and Parse check the whole file and report every problem at once, each with the
// file, line and column it is about and what is wrong (an *Error, collected in an
// Errors); a file with any problem yields no Config. Unknown keys are errors, so a
// misspelt key is never silently ignored.
//
// # The state of a process, and expressions
//
// A process defined here keeps a State: the handled events seen by type, their data
// merged (a later event's field wins), their count, the handled event folded last, and
// the commands issued. complete_when, the when of an issue entry and each value of a
// command's data are expressions compiled with github.com/expr-lang/expr when the file
// is loaded, over these variables:
//
//	state.data    map[string]any  the handled events' data, merged
//	state.seen    map[string]int  handled events seen, by type (a type not seen yet counts 0)
//	state.events  int             handled events seen
//	state.id      string          the process id
//	event         the handled event folded last: event.type, event.data, event.id, event.stream
//	process_id    string          the process id
//
// and, so that files written before state existed stay valid, data, seen, events and
// id, the same as state's. An unknown name is an error at load, with its line and
// column. complete_when and when must yield a boolean; `seen.X` and `state.seen.X` must
// name a handled type. `all` is every handled type seen at least once, `any` is any of
// them.
//
// # Commands
//
// issue is one command (a mapping: type, data) or a list of them, each with an optional
// when. Each is issued at most once per process: a command without when once the
// process is complete (complete_when holds), one with when as soon as it holds. The
// command keys (see pm.Command) are KeyComplete for an issue mapping, KeyDeadline for the
// deadline's command and the command type for a list entry, so changing one form into
// the other issues the commands of processes that were complete again. So complete and
// deadline are reserved as the type of a list entry, which would be taken for the issue
// mapping's command or the deadline's, and refused at load; they are ordinary types for
// an issue mapping and a deadline's issue. A command's data holds the process id under
// correlate_by, then each data field (one named like correlate_by would overwrite the
// id, and is refused at load); a field whose expression fails to evaluate (a field no
// event has set yet, used in arithmetic) is null, so write
// `(state.data.amount ?? 0) * 100` where a field may be missing.
//
// # Long processes
//
// The state of a process is kept in memory once folded, for the cache most recently
// handled processes (pm.Options.CacheSize; negative keeps none), and written into the
// store as a snapshot every snapshot_every events (pm.Options.SnapshotEvery; negative
// writes none), so that an event costs the same however long its process is. Both
// default to pm's defaults. A snapshot is trusted only by a definition with the same
// correlate_by, handles, complete_when, issue and deadline: after a change of any of
// them each process is folded from its stream once, and snapshotted again.
//
// # Retention
//
// retention: {completed: DURATION} (pm.Options.Retention) removes a process that long
// after it is done: it issued a command and has no deadline pending (complete, or
// expired by its deadline). Its process, deliveries and snapshot streams are deleted;
// the handled events stay in their own streams; a marker stream
// "<name>.removed$<process id>" is kept, so that a later event of the same process id
// starts nothing and issues no command again. The duration must parse
// (time.ParseDuration: 720h, 90m) and be positive; leave retention out to keep
// processes for ever. It does not change Version: snapshots stay trusted.
//
// A deadline, counted from the timestamp of the first handled event, issues its command
// (whose data may use expressions too) once if the process is not complete by then; a
// process that expired this way issues nothing more.
package config
