// Package cluster replicates a pmd store over Raft (github.com/hashicorp/raft): three or
// five nodes hold one log, and any node takes any request.
//
// The store is the state machine. A write made on the leader is encoded by the store
// (pmd.Store.SetReplicator), put in a Raft entry with the leader's timestamp, and applied
// on every node, in log order, through pmd.Store.ApplyWrites: expected versions, event
// ids and exact retries are checked at apply, against the same state on every node, so
// every node writes the same records at the same positions and agrees on which write won.
// Raft's log is a segmented log (tidwall/wal segments, one fsync per batch of entries) and
// its stable store a small file, both in DIR/raft/ (FORMAT.md; a node that ran on
// raft-boltdb migrates at start); its snapshots are a position (the store's own log is the
// state), and a node that is further behind than the Raft log reaches copies the records
// it lacks from a peer over the cluster service.
//
// What it promises:
//
//   - A write is acknowledged once a quorum has its entry on disk and the leader applied it.
//     Of two concurrent writes with the same expected version, through any nodes, exactly
//     one wins.
//   - Apply is idempotent across restarts: the Raft index of each replicated write is on
//     its commit record in the store's log (log.Record.Applied), written with the records,
//     and the entries at or below it are skipped when Raft applies them again.
//   - Each node fsyncs its Raft log once per batch of entries, and not its store: Raft's
//     log holds every entry after the last snapshot and applies them again after a
//     restart, and the store syncs before each snapshot (fsm.Snapshot) and before the
//     index goes to disk, so a power cut costs the store only what Raft replays.
//   - Timestamps come from the leader and grow in log order as long as one leader's clock
//     does; the first leader of a cluster appends a seed entry so that every node starts
//     from the same records and store id (a single node's data directory seeds a cluster).
//   - Leader-only work (Config.OnLeader: process managers, subscriptions) starts once the
//     node leads and has applied every earlier entry, and is stopped and waited for when
//     leadership is lost, before the node does anything else; Close stops it first, while
//     Raft runs, so that its last writes (positions, checkpoints) land.
//   - Every node decides an entry by the same apply rules: the leader stamps each entry
//     with the newest rules version every voter applies (RulesVersion, FORMAT.md), and a
//     node that meets an entry of newer rules than its own applies nothing of it or after
//     it, and stops its Raft saying so (state "halted"), rather than decide it otherwise.
//   - A node whose copy cannot follow (a failed log write under an entry Raft considers
//     applied, a data directory of another store) stops (Config.Fatal); restarted with
//     the same flags it applies the entries again and rejoins.
//
// One TCP port, the Raft address, carries Raft's traffic and the cluster service's (join,
// remove, node info, records for a node catching up); see mux.go and service.go. With
// Config.Secrets, every connection to it proves it knows a secret the nodes share before
// anything else is read from it (auth.go); its bytes are not encrypted.
package cluster
