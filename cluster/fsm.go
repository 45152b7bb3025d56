package cluster

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
	"github.com/vmihailenco/msgpack/v5"
)

// The Raft log entries of a cluster (raft.LogCommand data): a kind byte, then msgpack.
const (
	// entryWrite carries one write as the leader prepared it: writeEntry.
	entryWrite byte = 1
	// entrySeed carries the store a new cluster starts from: seedEntry. The first
	// leader of a cluster appends it, so that every node holds the same records (the
	// seed node's, if its data directory was a single node's) and the same store id
	// before the first write.
	entrySeed byte = 2
	// entryWrites carries several writes, as the leader prepared them while an entry was
	// in flight: writesEntry. It comes with rules version 2 (batchedRules): a leader
	// makes it only while every voter applies version 2.
	entryWrites byte = 3
)

// batchedRules is the first apply rules version that knows entryWrites.
const batchedRules uint32 = 2

// maxEntryWrites and maxEntryBytes bound the writes of one entryWrites entry: a write
// larger than maxEntryBytes goes in one alone.
const (
	maxEntryWrites = 256
	maxEntryBytes  = 1 << 20
)

// RulesVersion is the version of the rules by which this pmd applies Raft entries: how
// a write's expected version, event ids, exact retries, non-finite numbers and retention
// records are decided (pmd.Store.ApplyWrites), and what a seed entry does. Every node
// must decide each entry the same way, so the leader stamps each entry it prepares with
// the rules version to apply it by (the least that every voter knows, Node.restamp),
// and a node refuses an entry stamped with a version newer than this one rather than
// decide it by older rules (fsm.refuse). A release that changes the rules raises it, and
// keeps applying entries stamped with an older version by the older rules, for the
// entries prepared while the cluster was being upgraded. See FORMAT.md, "Apply rules".
const RulesVersion uint32 = 2

// unstampedRules is the rules version of an entry without a stamp: pmd before rules
// versions wrote none, and applied its entries by the rules of version 1.
const unstampedRules uint32 = 1

// rulesOf is the rules version an entry's stamp stands for.
func rulesOf(stamp uint32) uint32 {
	if stamp == 0 {
		return unstampedRules
	}
	return stamp
}

type writeEntry struct {
	Timestamp int64  `msgpack:"t"` // the leader's clock: the events' timestamp
	Write     []byte `msgpack:"w"` // as pmd.Store.SetReplicator's fn got it
	// Rules is the apply rules version to decide it by (RulesVersion); 0, left out of
	// the encoding, in entries of pmd before rules versions: unstampedRules.
	Rules uint32 `msgpack:"r,omitempty"`
}

// writesEntry is an entryWrites entry: its writes in log order, each with its own
// timestamp, growing. The write at Writes[i] is applied as ReplicatedWrite.Slot i.
type writesEntry struct {
	Writes []writeItem `msgpack:"ws"`
	Rules  uint32      `msgpack:"r"` // as writeEntry's: at least batchedRules
}

type writeItem struct {
	Timestamp int64  `msgpack:"t"`
	Write     []byte `msgpack:"w"`
}

type seedEntry struct {
	StoreID  uuid.UUID `msgpack:"id"`
	Position uint64    `msgpack:"pos"`         // the seed store's last position
	Rules    uint32    `msgpack:"r,omitempty"` // as writeEntry's
	// Cluster is the cluster's id (clusterIDFile), made by its first leader; left out
	// by a pmd before cluster ids, whose nodes decode the entry without it.
	Cluster uuid.UUID `msgpack:"c,omitempty"`
}

// RulesError is why a node stopped applying Raft entries: an entry was stamped with
// apply rules newer than this pmd's. None of that entry, nor of any after it, is applied
// here; a pmd that knows its rules applies them from there.
type RulesError struct {
	Index uint64 // the entry's Raft index
	Rules uint32 // the rules version it is stamped with
	Known uint32 // the newest this pmd applies (RulesVersion)
	Kind  byte   // if not 0, the entry is of this kind, which this pmd does not know (Rules is then unknown)
}

func (e *RulesError) Error() string {
	if e.Kind != 0 {
		return fmt.Sprintf("cluster: Raft entry %d is of kind %d, which this node's pmd (apply rules up to version %d) does not know: a newer release prepared it: "+
			"it stopped applying entries there (none of that entry was applied); upgrade this node's pmd to the cluster's release and restart it",
			e.Index, e.Kind, e.Known)
	}
	return fmt.Sprintf("cluster: Raft entry %d is stamped with apply rules version %d, and this node's pmd applies rules up to version %d: "+
		"it stopped applying entries there (none of that entry was applied); upgrade this node's pmd to a release with rules version %d or later and restart it",
		e.Index, e.Rules, e.Known, e.Rules)
}

// snapshotData is what a snapshot holds: not the store's records, which are the store's
// own log, but the position they reach and the store's id. A node installing a snapshot
// copies the records it lacks from a node that has them (see catchUp).
type snapshotData struct {
	Position uint64    `msgpack:"pos"`
	StoreID  uuid.UUID `msgpack:"id"`
	Cluster  uuid.UUID `msgpack:"c,omitempty"` // the cluster's id, as the seed entry's; absent if unknown
}

// fsm is the Raft state machine: the store.
type fsm struct {
	store  *pmd.Store
	logger *slog.Logger
	fetch  func(ctx context.Context, to uint64) error // copies records up to to from a peer
	fatal  func(error)                                // the node cannot go on: stop it
	// rules is the newest apply rules version this node applies: RulesVersion (tests
	// pretend to be another release).
	rules uint32
	// halt is told once, when an entry is refused (refuse): the node stops its Raft. It
	// runs on Raft's FSM goroutine, which raft.Shutdown waits for: it must not block.
	halt    func(*RulesError)
	refused atomic.Pointer[RulesError] // set once an entry was refused: nothing is applied after it

	cluster *clusterID // the cluster's id, recorded from the seed entry or a snapshot
	// foreign is told when Restore refuses a snapshot of another cluster or store
	// (foreignError): the node stops. It runs on Raft's FSM goroutine: it must not wait
	// for Raft.
	foreign func(error)

	applied atomic.Uint64 // the last Raft index applied (or skipped), for WaitApplied
	// resume is the Raft index of the store's last write at start (pmd.Store.Applied),
	// while its entry has not been handed again: an entryWrites entry whose first writes
	// alone reached the store before a crash. The store skips the writes it holds. An
	// entry of one write there is whole in the store, and passed over as before.
	resume  uint64
	mu      sync.Mutex
	waiters []waiter
	lastTS  atomic.Int64 // the greatest event timestamp applied
}

type waiter struct {
	index uint64
	ch    chan struct{}
}

// outcome is what Apply returns for one write entry: raft's ApplyFuture.Response.
type outcome struct {
	res pmd.WriteResult
	err error
}

// writesOutcome is what Apply returns for an entryWrites entry: each write's outcome,
// in the entry's order; err, if set, is the entry's (it did not decode, or was refused).
type writesOutcome struct {
	outs []outcome
	err  error
}

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies the entries Raft committed, in order: the writes of a run of write
// entries go to the store together, sharing its log writes and fsyncs.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	if r := f.refused.Load(); r != nil {
		// Raft hands on the entries after a refused one until it stops: none is applied,
		// and the applied index stays before the refused one.
		for i := range out {
			out[i] = &outcome{err: r}
		}
		return out
	}
	var run []pmd.ReplicatedWrite
	var at []int // the entry of each write of run, in logs
	flush := func() {
		if len(run) == 0 {
			return
		}
		for i, o := range f.store.ApplyWrites(context.Background(), run) {
			if errors.Is(o.Err, pmd.ErrReplicaFailed) {
				f.fatal(o.Err)
			}
			if w, ok := out[at[i]].(*writesOutcome); ok {
				w.outs[run[i].Slot] = outcome{res: o.Result, err: o.Err}
			} else {
				out[at[i]] = &outcome{res: o.Result, err: o.Err}
			}
			if o.Err == nil && !o.Skipped && run[i].Timestamp > f.lastTS.Load() {
				f.lastTS.Store(run[i].Timestamp)
			}
		}
		run, at = run[:0], at[:0]
	}
	for i, l := range logs {
		if l.Type != raft.LogCommand || len(l.Data) == 0 {
			continue
		}
		if l.Index <= f.applied.Load() && (l.Index != f.resume || l.Data[0] != entryWrites) {
			// Applied before (Raft hands on again, after a restart, the entries after its
			// last snapshot): the store holds them, and a node restarted with an older
			// pmd must not refuse by their stamp what it has applied already. An entry of
			// one write at resume is whole in the store too: its write has one commit
			// record. An entry of several there may not be (below).
			out[i] = &outcome{}
			continue
		}
		switch l.Data[0] {
		case entryWrite:
			var e writeEntry
			if err := msgpack.Unmarshal(l.Data[1:], &e); err != nil {
				out[i] = &outcome{err: fmt.Errorf("%w: Raft entry %d does not decode: %v", pmd.ErrInvalidArgument, l.Index, err)}
				continue
			}
			if rulesOf(e.Rules) > f.rules {
				flush()
				return f.refuse(logs, i, out, e.Rules, 0)
			}
			run = append(run, pmd.ReplicatedWrite{Index: l.Index, Timestamp: e.Timestamp, Write: e.Write})
			at = append(at, i)
		case entryWrites:
			if f.rules < batchedRules {
				flush()
				return f.refuse(logs, i, out, 0, l.Data[0])
			}
			var e writesEntry
			if err := msgpack.Unmarshal(l.Data[1:], &e); err != nil {
				out[i] = &writesOutcome{err: fmt.Errorf("%w: Raft entry %d does not decode: %v", pmd.ErrInvalidArgument, l.Index, err)}
				continue
			}
			if rulesOf(e.Rules) > f.rules {
				if l.Index == f.resume && int(f.store.AppliedSlot()) >= len(e.Writes)-1 {
					// The store held all its writes before the restart (a node restarted
					// with an older pmd): passed over as an applied entry. One it holds
					// part of is refused: its other writes are not this node's to decide.
					out[i] = &outcome{}
					continue
				}
				flush()
				return f.refuse(logs, i, out, e.Rules, 0)
			}
			out[i] = &writesOutcome{outs: make([]outcome, len(e.Writes))}
			for j, w := range e.Writes {
				run = append(run, pmd.ReplicatedWrite{Index: l.Index, Slot: uint32(j), Timestamp: w.Timestamp, Write: w.Write})
				at = append(at, i)
			}
		case entrySeed:
			flush()
			var e seedEntry
			err := msgpack.Unmarshal(l.Data[1:], &e)
			if err == nil && rulesOf(e.Rules) > f.rules {
				return f.refuse(logs, i, out, e.Rules, 0)
			}
			if err == nil {
				err = f.seed(e)
			}
			if err != nil {
				f.fatal(fmt.Errorf("cluster: apply the seed entry %d: %w", l.Index, err))
			}
			out[i] = &outcome{err: err}
		default:
			// A kind this pmd does not know comes from a newer release (a new kind comes
			// with a new rules version): passing over it would leave this copy without it.
			flush()
			return f.refuse(logs, i, out, 0, l.Data[0])
		}
	}
	flush()
	if logs[len(logs)-1].Index >= f.resume {
		f.resume = 0 // handed again (or in the snapshot Raft started from)
	}
	f.setApplied(logs[len(logs)-1].Index)
	return out
}

// refuse stops applying at logs[i], whose entry is stamped with rules newer than this
// node's, or is of a kind it does not know (kind, else 0): deciding it by older rules could write what the other nodes do not, and
// skipping it would leave this copy without it. The entries before it in the batch are
// applied (flushed by the caller); it and those after it get the refusal as their
// outcome, the applied index stays before it, and the node is told to stop (halt).
// Raft counts the entry applied all the same: Snapshot refuses from now on, so that no
// snapshot stands for it, and a restart hands it to the FSM again.
func (f *fsm) refuse(logs []*raft.Log, i int, out []any, stamp uint32, kind byte) []any {
	r := &RulesError{Index: logs[i].Index, Rules: rulesOf(stamp), Known: f.rules, Kind: kind}
	for j := i; j < len(out); j++ {
		out[j] = &outcome{err: r}
	}
	if i > 0 {
		f.setApplied(logs[i-1].Index)
	}
	if f.refused.CompareAndSwap(nil, r) {
		f.halt(r)
		f.mu.Lock()
		for _, w := range f.waiters {
			close(w.ch) // waitApplied: the entries after the refused one are never applied
		}
		f.waiters = nil
		f.mu.Unlock()
	}
	return out
}

// seed makes the store the cluster's: its records up to the seed's position, its id;
// the node records the cluster's id. While the store holds no write (Applied is 0), the
// entry's id replaces the recorded one: every node applies the same entries, so all end
// with the latest seed entry's id (a leader that had none, after installing a snapshot of
// an older leader, seeds again with a new one). Once writes exist a leader seeds no more
// (Node.seed), and such an entry changes nothing: an id other than the recorded one is not
// taken, and the node says so (an ERROR) and goes on, as every member does, whatever id it
// recorded, so that the entry decides nothing differently on any of them. A node with no
// id records the entry's.
func (f *fsm) seed(e seedEntry) error {
	if f.store.Applied() > 0 {
		if ours := f.cluster.get(); ours != uuid.Nil && e.Cluster != uuid.Nil && e.Cluster != ours {
			f.logger.Error("cluster: a seed entry made after the first write names another cluster id: not taken", "cluster_id", ours, "entry_cluster_id", e.Cluster)
			return nil
		}
		return f.cluster.adopt(e.Cluster) // the store holds writes made after the seed, so it applied it
	}
	if err := f.cluster.replace(e.Cluster); err != nil {
		return err
	}
	return f.reach(e.Position, e.StoreID)
}

// reach brings the store to position pos of the store with id id, copying the records it
// lacks from a peer, and takes the id. It refuses (belongs) a store of another store or
// ahead of pos, before it copies anything.
func (f *fsm) reach(pos uint64, id uuid.UUID) error {
	if err := f.belongs(pos, id, uuid.Nil); err != nil {
		return err
	}
	last := f.store.LastPosition()
	if last == 0 {
		// Take the cluster's id first: a copy cut partway must leave records the next
		// start knows as the cluster's, not as another store's.
		if err := f.store.AdoptID(id); err != nil {
			return err
		}
	}
	if last < pos {
		f.logger.Info("cluster: copying records from a peer", "from", last+1, "to", pos)
		if err := f.fetch(context.Background(), pos); err != nil {
			return err
		}
		// The copied events' timestamps count as applied ones do: this node, leading
		// later with a clock behind the one that wrote them, must not go below them.
		ts, err := f.store.LastEventTime()
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if ts > f.lastTS.Load() {
			f.lastTS.Store(ts)
		}
	}
	return f.store.AdoptID(id)
}

// foreignError is a refusal of a seed or snapshot of another cluster or store: no retry
// and no other peer can make this node take it.
type foreignError struct{ msg string }

func (e *foreignError) Error() string { return e.msg }

// belongs refuses, with a *foreignError, to take this node's store to position pos of
// the store with id id, in the cluster with id cluster (uuid.Nil: not known, nothing
// compared): a node that recorded another cluster id and holds writes belongs to that
// cluster (one with none holds the seed's records, and takes the id: fsm.seed); a store
// with records of another store diverges, and so does one with the cluster's id and
// records past pos that no entry of the cluster wrote (none carries a Raft index: Applied
// is 0): a copy of the seed's data directory written to after the seed's copy was taken.
// (A store past pos whose records came from the cluster's entries, as at a restart that
// restores the node's own snapshot, is the cluster's.)
func (f *fsm) belongs(pos uint64, id, cluster uuid.UUID) error {
	if ours := f.cluster.get(); ours != uuid.Nil && cluster != uuid.Nil && cluster != ours && f.store.Applied() > 0 {
		return &foreignError{otherCluster(ours, cluster)}
	}
	last := f.store.LastPosition()
	if last > 0 && f.store.ID() != id {
		return &foreignError{fmt.Sprintf("this node's data directory holds store %s (%d records), not the cluster's store %s: remove it from the cluster first (pmd cluster remove and its node id), then start it with an empty data directory and --join", f.store.ID(), last, id)}
	}
	if last > pos && f.store.Applied() == 0 {
		return &foreignError{fmt.Sprintf("this node's store is ahead of the cluster's store %s: it holds %d records, and the cluster's held %d where this node takes it up, "+
			"the %d after them written by no entry of the cluster (a single node wrote them): remove it from the cluster first (pmd cluster remove and its node id), then start it with an empty data directory and --join", id, last, pos, last-pos)}
	}
	return nil
}

// setApplied notes that the entries up to idx are applied. After a restart Raft applies
// again, skipped by the store, entries below what the store held: applied never goes back.
func (f *fsm) setApplied(idx uint64) {
	f.mu.Lock()
	if idx <= f.applied.Load() {
		f.mu.Unlock()
		return
	}
	f.applied.Store(idx)
	keep := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= idx {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	f.waiters = keep
	f.mu.Unlock()
}

// waitApplied returns once the entry at idx is applied here, or ctx ends; at once with
// the refusal (a *RulesError) if the node refused an entry at or before idx, which it
// will not apply.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	if f.applied.Load() >= idx {
		return nil
	}
	ch := make(chan struct{})
	f.mu.Lock()
	if f.applied.Load() >= idx {
		f.mu.Unlock()
		return nil
	}
	if r := f.refused.Load(); r != nil {
		f.mu.Unlock()
		return r
	}
	f.waiters = append(f.waiters, waiter{idx, ch})
	f.mu.Unlock()
	select {
	case <-ch:
		if r := f.refused.Load(); r != nil && f.applied.Load() < idx {
			return r
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot is cheap: the store's own log is the state, so a snapshot is the position it
// reaches (raft calls Snapshot between two applies). The store's writes are not fsynced
// (Raft's log holds the entries): it syncs them here, before Raft takes the snapshot as
// the point up to which it may drop its entries.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if r := f.refused.Load(); r != nil {
		return nil, r
	}
	if err := f.store.Sync(); err != nil {
		return nil, fmt.Errorf("cluster: sync the store before a snapshot: %w", err)
	}
	return &snapshot{data: snapshotData{Position: f.store.LastPosition(), StoreID: f.store.ID(), Cluster: f.cluster.get()}}, nil
}

// Restore brings the store to the snapshot: at start, raft restores the node's own last
// snapshot, which the store already holds (nothing to do); a node far behind gets the
// leader's, and copies the records it lacks. A snapshot of another cluster or store
// (belongs) stops the node (foreign): Raft saved it before it called Restore, and the
// leader would send it again and again, each copy saved in place of one of the node's
// own; its next start refuses it (resume).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var d snapshotData
	if err := msgpack.NewDecoder(bufio.NewReader(rc)).Decode(&d); err != nil {
		return fmt.Errorf("cluster: read a snapshot: %w", err)
	}
	err := f.belongs(d.Position, d.StoreID, d.Cluster)
	if err == nil {
		if f.store.Applied() == 0 {
			err = f.cluster.replace(d.Cluster) // as a seed entry's: belongs compared nothing
		} else {
			err = f.cluster.adopt(d.Cluster)
		}
	}
	if err == nil {
		err = f.reach(d.Position, d.StoreID)
	}
	var fe *foreignError
	if errors.As(err, &fe) && f.foreign != nil {
		f.foreign(fmt.Errorf("cluster: refused a Raft snapshot of position %d of store %s, cluster %s: %w", d.Position, d.StoreID, cmp.Or(idString(d.Cluster), "unknown"), err))
	}
	return err
}

type snapshot struct{ data snapshotData }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	b, err := msgpack.Marshal(&s.data)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
