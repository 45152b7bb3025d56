// Package peers benchmarks pmd against the stores a user would pick instead of it:
// PostgreSQL with the RailsEventStore schema, NATS JetStream used as an event store,
// and bbolt with a plain events + stream-index layout.
//
// Every store sits behind the same small [Store] interface and runs the same
// workloads in the same process on the same machine ([RunAll]), the stores taking
// turns round by round so that the machine's noise falls on all of them alike:
//
//   - append: one writer, then many concurrent writers, each appending one
//     durable event at a time to its own stream with an exact expected version;
//   - link: each appended event linked into a second stream, again with one and
//     with many writers (the process-manager pattern);
//   - process-manager replay: on a log of orders whose two "facts" are linked
//     into a process stream, read random process streams whole;
//   - a scan of the whole log in write order ($all);
//   - disk bytes used per event.
//
// Writes in the timed workloads are durable on every store: each acknowledged
// write is on disk (fsync) before the next one starts. Only the bulk load of the
// replay log runs with syncing off, and every store is closed (flushed),
// reopened durable and warmed up untimed (Params.WarmUp) before it is read. How each peer is configured is written next
// to its adapter and in bench/README.md, so a reader can check the comparison is fair.
//
// A [Report] writes the results as Markdown, with each figure's ratio to pmd
// ([Report.WriteMarkdown]), and as a PNG chart ([Report.WriteChart]).
// Command peers (cmd/peers, run by `make bench-peers`) does all of it at full size.
//
// It is a Go module of its own (with a replace of github.com/pmd-dev/pmd by this
// checkout) so that the clients and servers of the peers, which only these benchmarks
// need, are not requirements of pmd: a program that imports pmd does not download them.
package peers
