// Package config reads the daemon's config file: the process managers that `pmd serve`
// runs without any Go code (CONTRACT.md section 6).
//
//	processes:
//	  - name: CateringMatch              # process streams are CateringMatch$<process id>
//	    correlate_by: order_id           # the data field that holds the process id
//	    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
//	    complete_when: all               # all, any, or an expression over the state
//	    issue:
//	      type: ConfirmOrder             # its data holds the process id under correlate_by
//	    deadline:                        # optional
//	      after: 48h
//	      issue: {type: CancelOrder}
//	    deliver:                         # optional: POST each command, at least once
//	      webhook: http://127.0.0.1:9000/commands
//	    cache: 10000                     # optional: processes whose state is kept in memory
//	    snapshot_every: 1000             # optional: events between snapshots of a long process
//
// Load and Parse check the whole file and report every problem at once, each with the
// file, line and column it is about and what is wrong (an *Error, collected in an
// Errors); a file with any problem yields no Config. Unknown keys are errors, so a
// misspelt key is never silently ignored.
//
// # The state of a process, and complete_when
//
// A process defined here keeps a State: the handled events seen by type, their data
// merged (a later event's field wins), their count, and the commands issued. An
// expression in complete_when is compiled with github.com/expr-lang/expr and evaluated
// over these variables:
//
//	id      string          the process id
//	seen    map[string]int  handled events seen, by type (a type not seen yet counts 0)
//	data    map[string]any  the handled events' data, merged
//	events  int             handled events seen
//
// for instance `seen.CustomerConfirmedMenu > 0 && data.guests >= 10`. It must yield a
// boolean; `seen.X` must name a handled type. `all` is every handled type seen at least
// once, `any` is any of them.
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
// A process issues its command once, when complete_when first holds. A deadline, counted
// from the timestamp of the first handled event, issues its command once if the process
// is not complete by then; a process that expired this way issues nothing more.
package config
