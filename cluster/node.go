package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
	"github.com/vmihailenco/msgpack/v5"
)

// Config configures a Node. NodeID, RaftAddr, HTTPAddr, Dir and Store are required.
type Config struct {
	NodeID string // unique in the cluster, kept for the node's life
	// RaftAddr is the host:port this node's Raft and cluster service listen on. With
	// port 0 the system picks a free port, which the node advertises if RaftAdvertise is
	// empty (Self), and logs ("cluster: node started", raft_listen): for a node of its
	// own, or behind a RaftAdvertise that stays (the tests' proxies), since the port
	// changes at every start while the cluster's configuration keeps the one it joined
	// with.
	RaftAddr string
	// RaftAdvertise is the address the other nodes reach RaftAddr at, if not RaftAddr
	// itself (a proxy or a NAT in between).
	RaftAdvertise string
	HTTPAddr      string // the node's HTTP API, where other nodes forward requests
	// Join names the Raft addresses of other nodes. A node without Raft state asks them
	// to add it to their cluster; with BootstrapExpect, it also forms a new cluster with
	// them once that many nodes (itself included) answer. A node with neither, and no
	// Raft state, starts a cluster of its own (which others can then join): a single
	// node's data directory seeds a cluster this way.
	Join            []string
	BootstrapExpect int
	Dir             string     // the data directory; Raft's state goes in its raft/ folder
	Store           *pmd.Store // the store in Dir, opened by the caller
	Logger          *slog.Logger
	// Secrets, if any, are the cluster's shared secrets (each at least MinSecretLen
	// bytes): every connection to RaftAddr, Raft's and the cluster service's, must prove
	// it knows one before anything else is read from it, and this node proves the first
	// when it dials (auth.go). All the nodes of a cluster need one secret in common.
	// Without any, the node asks nothing of those who connect: anyone who reaches
	// RaftAddr can read every record and change the cluster, so the caller must keep it
	// on loopback (cmd/pmd does).
	Secrets [][]byte
	// Fatal is called when the node's copy can no longer follow the cluster (a log
	// write that failed under an applied entry, a data directory of another store): the
	// caller must stop the node; a restart applies the entries again. nil exits.
	Fatal func(error)
	// OnLeader, if set, runs while this node is the leader and has applied every entry
	// of the log before its term: for process managers and subscriptions. Its context
	// ends when leadership is lost, and the node waits for it to return before it
	// takes part in anything else, so the work stops here before it can start on the
	// next leader as far as this node is concerned. Close ends its context too, and
	// waits for it to return before it stops Raft: its writes as it stops still land.
	OnLeader func(ctx context.Context)

	// Raft tuning; zero values take the defaults noted.
	HeartbeatTimeout   time.Duration // 1s
	ElectionTimeout    time.Duration // 1s
	LeaderLeaseTimeout time.Duration // 500ms
	SnapshotThreshold  uint64        // 8192 entries
	SnapshotInterval   time.Duration // 2m: how often Raft checks SnapshotThreshold
	TrailingLogs       uint64        // 10240 entries
	NoSync             bool          // Raft's log store without fsync (tests only)

	// rules is the newest apply rules version the node applies, if not RulesVersion:
	// for tests that play a node of another release.
	rules uint32
	// resumeWait bounds the start-time copy of records behind the node's own snapshot,
	// if not defaultResumeWait: for tests.
	resumeWait time.Duration
}

// Errors.
var (
	// ErrNoLeader: no leader is known within the wait (no quorum, or an election).
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrNotLeader: the operation needs the leader and this node is not.
	ErrNotLeader = errors.New("cluster: this node is not the leader")
	// ErrRemoved: the leader removed this node from the cluster, and the node stopped
	// its Raft. Its store still answers reads of what it holds.
	ErrRemoved = errors.New("cluster: this node was removed from the cluster: restart it with --join to rejoin")
	// ErrJoinRules: a node asked to join runs a pmd whose apply rules are older than
	// those of entries in the Raft log it would replay (it would halt, and with it the
	// cluster's quorum): it is not added.
	ErrJoinRules = errors.New("cluster: the node's pmd is too old to join")
)

// Node is a running cluster member: Raft, its state machine (the store) and the
// cluster service.
type Node struct {
	cfg    Config
	store  *pmd.Store
	logger *slog.Logger
	raft   *raft.Raft
	// started is raft once NewRaft returned: the state machine, which Raft runs before
	// that, reads it (to copy records from a peer) through here.
	started atomic.Pointer[raft.Raft]
	fsm     *fsm
	mux     *mux
	trans   *raft.NetworkTransport
	guard   *voteGuard // in front of trans for Raft, if the node started with no Raft state
	askedMu sync.Mutex
	asked   map[string]bool // guarded by askedMu: Raft addresses that answered this node's join as the leader
	logs    *logStore
	entries *entryCache             // the Raft log behind the cache of its latest entries: what appliedThrough reads
	snaps   *raft.FileSnapshotStore // the node's snapshots, for appliedThrough
	// through is the greatest index appliedThrough found: it starts there next time.
	through atomic.Uint64

	joinLog logLimiter // of the failures of joins

	applyMu sync.Mutex
	lastTS  int64 // guarded by applyMu: the last timestamp given to a write

	// The writes waiting for the entry in flight, which go out together in one
	// entryWrites entry when it is applied (replicate).
	queueMu  sync.Mutex
	queue    []*queuedWrite
	inFlight bool // an entry of queued writes is in Raft
	ready    atomic.Bool
	// readyTerm is the term in which this node last became ready (ready): a leader
	// read holds only while the node still leads in that term (ReadBarrier).
	readyTerm atomic.Uint64
	removed   atomic.Bool // the leader removed this node, which stopped Raft (leave)

	// stamp is the apply rules version the leader stamps on the entries it prepares:
	// the least of what its voters apply (restamp). rulesMu guards rulesKnown, what
	// each voter said it applies when last asked; joining, the nodes addVoter is
	// adding, counted as voters before the configuration holds them; stamped, the
	// highest stamp this process put on an entry (stampEntry); and every store of stamp.
	stamp      atomic.Uint32
	rulesMu    sync.Mutex
	rulesKnown map[raft.ServerID]uint32
	joining    map[raft.ServerID]bool
	stamped    uint32

	// leaderAt is the leader's HTTP address as the leader gave it, for a term: asked
	// once per leader and term, not at every forwarded request (each ask is a connection
	// to the leader's cluster service).
	leaderAt atomic.Pointer[leaderHTTP]
	askMu    sync.Mutex
	asking   *leaderAsk // guarded by askMu: the ask of leaderAt in flight (askLeader)

	// copyStall, if not 0, replaces serviceTimeout as how long a peer that sends
	// records may send nothing before it is given up (tests).
	copyStall time.Duration

	stop chan struct{}
	// raftStopping is closed as this node stops Raft, by any of its ways (shutdownRaft):
	// an entry Apply took just then may never complete (Raft does not drain its apply
	// queue at shutdown), so its writers wait on this too (futureError).
	raftStopping chan struct{}
	raftStopOnce sync.Once
	// closing ends when the node is closed (Close), as stop does: the asks of form and
	// rejoin run under it, so that a close does not wait for silent nodes' timeouts.
	// The leader work (OnLeader) runs under it too.
	closing   context.Context
	endClosed context.CancelFunc
	wg        sync.WaitGroup

	workMu sync.Mutex
	// workDone is closed once the OnLeader started last returns; guarded by workMu.
	workDone chan struct{}
}

// Start starts the node: it opens Raft's state in cfg.Dir, listens on cfg.RaftAddr,
// and joins or forms its cluster in the background (see Config.Join). The store's
// writes go through Raft from now on. ctx bounds the start only, not the node's life:
// a node whose store is behind its own snapshot copies the missing records from the
// members before it starts Raft, and gives up when ctx ends (a shutdown asked for
// meanwhile).
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.NodeID == "" || cfg.RaftAddr == "" || cfg.Store == nil || cfg.Dir == "" {
		return nil, errors.New("cluster: a node needs an id, a Raft address, a data directory and its store")
	}
	if len(cfg.NodeID) > MaxNodeIDLen {
		// It could dial no other node: it would serve for ever with no leader.
		return nil, fmt.Errorf("cluster: the node id is %d bytes: a node id must be at most %d", len(cfg.NodeID), MaxNodeIDLen)
	}
	if err := checkSecrets(cfg.Secrets); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, store: cfg.Store, logger: cfg.Logger, stop: make(chan struct{}), raftStopping: make(chan struct{}), joinLog: logLimiter{period: 10 * time.Second}}
	n.closing, n.endClosed = context.WithCancel(context.Background())
	if cfg.Fatal == nil {
		n.cfg.Fatal = func(err error) {
			n.logger.Error("cluster: stopping the node", "err", err)
			os.Exit(1)
		}
	}
	n.rulesKnown = map[raft.ServerID]uint32{}
	n.joining = map[raft.ServerID]bool{}
	n.fsm = &fsm{store: cfg.Store, logger: cfg.Logger, fetch: n.fetch, fatal: n.cfg.Fatal, rules: cmp.Or(cfg.rules, RulesVersion), halt: n.halt}
	cid, err := loadClusterID(filepath.Join(cfg.Dir, engine.RaftDir, clusterIDFile))
	if err != nil {
		return nil, err
	}
	n.fsm.cluster = cid
	n.fsm.foreign = n.refuseSnapshot
	n.stamp.Store(unstampedRules)
	applied, err := cfg.Store.SetReplicator(n.replicate)
	if err != nil {
		return nil, err
	}
	n.fsm.applied.Store(applied)
	n.fsm.resume = applied
	// Raft does not apply again, after a restart, the entries the store holds: the
	// greatest applied timestamp starts at the store's last event, or a leader whose clock
	// is behind the one that wrote them would give its writes earlier timestamps.
	ts, err := cfg.Store.LastEventTime()
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.fsm.lastTS.Store(ts)
	if err := n.open(ctx); err != nil {
		n.closeAll()
		return nil, err
	}
	if n.fsm.refused.Load() != nil {
		n.stopRaft() // refused before Raft was known to halt
	}
	n.logger.Info("cluster: node started", "node_id", n.cfg.NodeID, "raft_listen", n.cfg.RaftAddr, "raft_advertise", n.cfg.RaftAdvertise, "apply_rules", n.fsm.rules)
	n.wg.Add(3)
	go n.serve()
	go n.lead()
	go n.form()
	return n, nil
}

func (n *Node) open(ctx context.Context) error {
	// Listen first: a start refused at its listen (a port in use, a host not this
	// machine's) must leave no raft/ behind, which would make a single node's directory
	// a member's from then on (closeAll closes the listener of a start that fails later).
	mux, err := listen(n.cfg.RaftAddr, keyring(n.cfg.Secrets), n.logger, defaultMuxLimits())
	if err != nil {
		return err
	}
	n.mux = mux
	dir := filepath.Join(n.cfg.Dir, engine.RaftDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// No Raft state: checkStore's refusal of a store whose last write carries a
		// Raft index needs none of it, and made after raft/, it left raft/ behind,
		// empty, which the next start (and a single node) takes for Raft state.
		if err := checkApplied(n.store, n.cfg.NodeID, n.fsm.applied.Load(), false, 0); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	hl := newRaftLogger(n.logger)
	if err := migrateBolt(dir, n.cfg.NoSync, n.logger.Info); err != nil {
		return err
	}
	logs, err := openLogStore(filepath.Join(dir, raftLogDir), n.cfg.NoSync, n.logger.Warn)
	if err != nil {
		return err
	}
	logs.fatal = n.cfg.Fatal
	n.logs = logs
	if err := n.recoverClusterID(filepath.Join(dir, raftLogDir)); err != nil {
		return err
	}
	stable, err := openStableStore(filepath.Join(dir, raftStableFile), n.cfg.NoSync)
	if err != nil {
		return err
	}
	// Raft reads the entries it just stored to replicate and apply them, and the last
	// one for its term at every round of replication: from memory, within a budget
	// (logcache.go).
	cached := newEntryCache(logs)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fmt.Errorf("cluster: open the Raft snapshots: %w", err)
	}
	if err := n.checkStore(logs, snaps); err != nil {
		return err
	}
	if !n.cfg.NoSync {
		// The names of raft/ and raft/snapshots/, which the lines above may have just
		// made, must outlive a power cut as their contents do: without them a node
		// would come back with no Raft state at all.
		for _, d := range []string{n.cfg.Dir, dir} {
			if err := engine.SyncFile(d); err != nil {
				return fmt.Errorf("cluster: sync %s: %w", d, err)
			}
		}
	}
	// Port 0 listens on a port the system picks, free for sure (where a port found free
	// and then given here could be taken meanwhile): the node is at, and advertises, that
	// one.
	if _, port, err := net.SplitHostPort(n.cfg.RaftAddr); err == nil && port == "0" {
		n.cfg.RaftAddr = n.mux.ln.Addr().String()
	}
	if n.cfg.RaftAdvertise == "" {
		n.cfg.RaftAdvertise = n.cfg.RaftAddr
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &layer{m: n.mux, conns: n.mux.raft, id: n.cfg.NodeID, adv: advAddr(n.cfg.RaftAdvertise)}, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl,
	})
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(n.cfg.NodeID)
	c.Logger = hl
	c.BatchApplyCh = true
	c.MaxAppendEntries = 256
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&c.HeartbeatTimeout, n.cfg.HeartbeatTimeout)
	set(&c.ElectionTimeout, n.cfg.ElectionTimeout)
	set(&c.LeaderLeaseTimeout, n.cfg.LeaderLeaseTimeout)
	set(&c.SnapshotInterval, n.cfg.SnapshotInterval)
	if n.cfg.SnapshotThreshold > 0 {
		c.SnapshotThreshold = n.cfg.SnapshotThreshold
	}
	if n.cfg.TrailingLogs > 0 {
		c.TrailingLogs = n.cfg.TrailingLogs
	}
	if err := n.resume(ctx, snaps); err != nil {
		return err
	}
	n.entries, n.snaps = cached, snaps
	empty, err := noRaftState(logs, snaps)
	if err != nil {
		return err
	}
	n.raft, err = raft.NewRaft(c, n.fsm, cached, stable, snaps, n.guardVotes(n.trans, empty))
	if err != nil {
		return fmt.Errorf("cluster: start Raft: %w", err)
	}
	n.started.Store(n.raft)
	// Raft restored the node's newest snapshot it could read (the store holds its
	// records: resume) and counts the entries up to it applied: it never hands them to
	// the state machine again. The last of them may have written nothing (a refused
	// write, an exact retry), and so lie past the store's last write (fsm.applied) while
	// the log still holds them: appliedThrough starts past them, or it stops at the first
	// and a wait for the commit index (a leader read) waits for the next write.
	if s, err := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64); err == nil {
		n.through.Store(s)
	}
	return nil
}

// recoverClusterID records the cluster id the node had, if it has none recorded:
// raft/CLUSTER_ID was lost, or the node applied the seed entry with a pmd before cluster
// ids and was upgraded since. That is the id of the latest seed entry in the Raft log in
// dir before the first write entry (every member keeps that one: fsm.seed), or that of
// the node's newest snapshot of its own store if that snapshot is newer (it was taken
// with the id the node had then). Once the store holds writes and a write entry follows
// that seed entry in the log, the seed entry's id stands, whatever a newer snapshot
// says: the node wrote its store in that cluster, and a newer snapshot of another id is
// one a leader of another cluster (seeded from a copy of the same data directory) sent,
// which Raft saved before the node refused it; resume then refuses that snapshot by its
// id. Raft does not hand the seed entry to the state machine again (the store applied
// it: fsm.applied skips it). A log compacted past the seed entry, or one of a cluster
// seeded before cluster ids, has none: the node learns the id from a snapshot it
// restores or installs, if ever.
func (n *Node) recoverClusterID(dir string) error {
	if n.fsm.cluster.get() != uuid.Nil {
		return nil
	}
	_, id, at, settled, _, err := readSeeds(dir)
	if err != nil {
		return err
	}
	from, logID := "the seed entry in the Raft log", id
	raftDir := filepath.Dir(dir)
	written := n.store.Applied() > 0
	if _, err := os.Stat(filepath.Join(raftDir, "snapshots")); err == nil && !(written && settled) {
		snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclog.NewNullLogger())
		if err != nil {
			return fmt.Errorf("cluster: open the Raft snapshots: %w", err)
		}
		metas, err := snaps.List()
		if err != nil {
			return fmt.Errorf("cluster: list the Raft snapshots: %w", err)
		}
		if len(metas) > 0 && metas[0].Index > at {
			d, err := readSnapshot(snaps, metas[0].ID)
			if err != nil {
				return err
			}
			if d.Cluster != uuid.Nil && d.StoreID == n.store.ID() {
				id, from = d.Cluster, "the node's newest Raft snapshot"
			}
			if written {
				if err := snapshotsAgree(snaps, metas, n.store.ID(), logID, raftDir); err != nil {
					return err
				}
			}
		}
	}
	if id == uuid.Nil {
		return nil
	}
	if err := n.fsm.cluster.adopt(id); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	n.logger.Info("cluster: recorded the cluster id from "+from, "cluster_id", id)
	return nil
}

// snapshotsAgree refuses to take the cluster id of a store (of id storeID) that holds
// writes from the snapshots metas of snaps, in raftDir, when those of that store name
// different clusters: one of them was sent by a leader of another cluster (seeded from a
// copy of the same data directory, so of the same store id) and saved by Raft before the
// node refused it (fsm.Restore). Taking the newest, the node took that cluster's id,
// accepted its snapshot and copied its records onto its own. Before any write the latest
// id replaces the one before it (fsm.seed), so snapshots of several ids are then the
// node's own. An older snapshot it cannot read is skipped, as Raft reads one only if it
// cannot read those after it. logID is the id of the seed entry in the node's Raft log,
// uuid.Nil if none: the error names it as the one to record.
func snapshotsAgree(snaps raft.SnapshotStore, metas []*raft.SnapshotMeta, storeID, logID uuid.UUID, raftDir string) error {
	var ids []string
	var first uuid.UUID
	differ := false
	for i, m := range metas {
		d, err := readSnapshot(snaps, m.ID)
		if err != nil {
			if i > 0 {
				continue
			}
			return err
		}
		if d.Cluster == uuid.Nil || d.StoreID != storeID {
			continue
		}
		ids = append(ids, fmt.Sprintf("%s in snapshot %s", d.Cluster, m.ID))
		if first == uuid.Nil {
			first = d.Cluster
		}
		differ = differ || d.Cluster != first
	}
	if !differ {
		return nil
	}
	file := filepath.Join(raftDir, clusterIDFile)
	which := "the cluster_id that a member of this node's cluster reports in its info"
	if logID != uuid.Nil {
		which = fmt.Sprintf("%s, the seed entry's in this node's Raft log", logID)
	}
	return fmt.Errorf("cluster: %s is missing, and this node's Raft snapshots name different clusters (%s): a leader of another cluster seeded from a copy of the same data directory sent one of them, "+
		"and Raft saved it before this node refused it; write this node's cluster id (%s) to %s, or remove the other cluster's snapshots from %s, and start it again",
		file, strings.Join(ids, ", "), which, file, filepath.Join(raftDir, "snapshots"))
}

// Close leaves the cluster's work to the others: it stops Raft (without leaving the
// configuration: a restart with the same flags rejoins) and the listeners.
func (n *Node) Close() error {
	// The leader work first, while Raft runs and the node still takes writes: what it
	// writes as it stops (a subscription's position, a process manager's checkpoint)
	// lands. Stopped after Raft, it was refused, and the next leader delivered again
	// every event delivered since the last position written (a rolling upgrade stops
	// the leader once).
	n.endClosed()
	n.workMu.Lock()
	done := n.workDone
	n.workMu.Unlock()
	if done != nil {
		<-done
	}
	close(n.stop)
	err := n.closeAll()
	n.wg.Wait()
	return err
}

func (n *Node) closeAll() error {
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.shutdownRaft(n.raft).Error())
	}
	if n.guard != nil {
		errs = append(errs, n.guard.Close()) // and trans
	} else if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	if n.logs != nil {
		errs = append(errs, n.logs.Close())
	}
	return errors.Join(errs...)
}

// form joins or forms the cluster when the node has no Raft state yet, and asks to be
// added again when it has state but was removed (rejoin).
func (n *Node) form() {
	defer n.wg.Done()
	others := slices.DeleteFunc(slices.Clone(n.cfg.Join), func(a string) bool { return a == n.cfg.RaftAdvertise })
	if n.hasState() {
		n.rejoin(others)
		return
	}
	if len(others) == 0 && n.cfg.BootstrapExpect <= 1 {
		n.bootstrap([]raft.Server{{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.RaftAdvertise)}})
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	waiting := false // logged that a node of --join is in a cluster already
	// Fewer nodes than BootstrapExpect in --join: this node can be added to a cluster
	// that exists (a template's flags, a --join trimmed since), never form one. Not
	// refused, but said, for a new cluster's node would otherwise wait in silence.
	named := 1 + len(slices.Compact(slices.Sorted(slices.Values(others))))
	selfAt := map[string]bool{} // addresses of --join at which this node answers
	warned := false
	for {
		if n.hasState() {
			return // joined: another node added this one, and Raft heard from it
		}
		if n.haltedJoin() {
			return
		}
		if n.tryJoin(others) {
			return
		}
		if n.cfg.BootstrapExpect > 1 {
			servers := []raft.Server{{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.RaftAdvertise)}}
			formed := "" // a node of --join that is in a cluster already
			for _, a := range others {
				ctx, cancel := context.WithTimeout(n.closing, time.Second)
				resp, _, _, err := n.call(ctx, a, request{Op: "info"}, time.Second)
				cancel()
				if err == nil && resp.Info != nil && resp.Info.InCluster && resp.Info.ID != n.cfg.NodeID {
					formed = resp.Info.ID
				}
				if err == nil && resp.Info != nil && resp.Info.ID == n.cfg.NodeID {
					selfAt[a] = true
				}
				// A node that answers at two addresses of --join (this one at another
				// address than it advertises, a host name and its IP) is counted once, at
				// the first: Raft refuses a configuration that names an id twice, and the
				// node would never form the cluster.
				if err == nil && resp.Info != nil && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == resp.Info.ID }) {
					servers = append(servers, raft.Server{ID: raft.ServerID(resp.Info.ID), Address: raft.ServerAddress(a)})
				}
			}
			if most := named - len(selfAt); !warned && n.cfg.BootstrapExpect > most {
				n.logger.Warn(fmt.Sprintf("cluster: --bootstrap-expect %d, but --join names at most %d nodes, this one included: "+
					"this node can only be added to a cluster that exists, never form one; waiting to be added "+
					"(to form a new cluster, name every node of it in --join)", n.cfg.BootstrapExpect, most))
				warned = true
			}
			// A cluster that exists (an election under way, a quorum down) is joined,
			// once it has a leader, not formed again: its members' configurations would
			// not name this node, which would never become a member. (A node of a new
			// cluster that formed it first gets the votes of those with no Raft state yet,
			// whom its configuration names, and then hands it to them.)
			if formed != "" {
				if !waiting {
					n.logger.Info("cluster: a node of --join is in a cluster already: asking to be added to it once it has a leader, not forming one", "node", formed)
					waiting = true
				}
			} else if len(servers) >= n.cfg.BootstrapExpect {
				slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
				n.bootstrap(servers)
				return
			}
		}
		select {
		case <-tick.C:
		case <-n.stop:
			return
		}
	}
}

func (n *Node) hasState() bool {
	return n.raft.LastIndex() > 0
}

// rejoin asks the nodes at addrs to add this node, which has Raft state, until a leader
// has added it or it hears from one as a member. A removed node may never have received
// the configuration without it (the leader stops replicating to it right away), so it
// cannot tell from its own state: asking a leader that already counts it in changes
// nothing (addVoter).
func (n *Node) rejoin(addrs []string) {
	if len(addrs) == 0 {
		if !n.member() {
			n.logger.Warn("cluster: this node is not in its cluster's configuration: start it with --join to rejoin")
		}
		return
	}
	// A member restarted with its cluster hears from the leader within an election or
	// two; it asks only if it does not.
	ask := time.Now()
	if n.member() {
		ask = ask.Add(3 * n.electionTimeout())
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.haltedJoin() {
			return
		}
		if n.member() {
			if _, id := n.raft.LeaderWithID(); id != "" {
				return
			}
		}
		if time.Now().After(ask) && n.tryJoin(addrs) {
			return
		}
		select {
		case <-tick.C:
		case <-n.stop:
			return
		}
	}
}

// haltedJoin reports whether this node halted (halt), and if so logs that it no
// longer asks to be added: its Raft is stopped for the life of the process, so a leader
// that adds it again gains nothing, and the asks went on every 500 ms for good.
func (n *Node) haltedJoin() bool {
	r := n.fsm.refused.Load()
	if r != nil {
		n.logger.Warn("cluster: this node halted: it no longer asks to be added to the cluster; upgrade its pmd and restart it", "entry", r.Index, "entry_rules", r.Rules)
	}
	return r != nil
}

func (n *Node) electionTimeout() time.Duration {
	if n.cfg.ElectionTimeout > 0 {
		return n.cfg.ElectionTimeout
	}
	return raft.DefaultConfig().ElectionTimeout
}

// member reports whether this node is in the latest configuration it knows.
func (n *Node) member() bool {
	for _, s := range n.raft.GetConfiguration().Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			return true
		}
	}
	return false
}

// leave stops Raft on a node that the leader removed from the configuration, as the
// leader told it (removeServer). Left running, its Raft would call elections that no
// member answers, and its copy, which gets no writes any more, would be read as if it
// were current: the node says it is removed instead (state "removed", Problems, 503 on
// writes). The store stays open for reads of what it holds.
func (n *Node) leave(by string) {
	if !n.removed.CompareAndSwap(false, true) {
		return
	}
	n.ready.Store(false)
	n.logger.Warn("cluster: removed from the cluster, stopping Raft; restart the node with --join to rejoin", "by", by)
	go func() {
		if err := n.shutdownRaft(n.raft).Error(); err != nil {
			n.logger.Warn("cluster: stop Raft", "err", err)
		}
	}()
}

// halt stops Raft on this node, whose state machine refused an entry stamped with
// apply rules newer than its pmd's (fsm.refuse): it cannot follow the cluster, and must
// not decide the entry by older rules. The process goes on, as a removed node's does,
// so that /healthz and GET /v1/cluster say why (Problems, state "halted") and its copy
// answers reads of what it holds; restarted with a pmd that knows the rules, it applies
// the entry and rejoins. It runs on Raft's FSM goroutine: it must not wait for Raft.
func (n *Node) halt(r *RulesError) {
	n.ready.Store(false)
	n.logger.Error("cluster: this node stopped applying Raft entries and stopped its Raft: upgrade its pmd", "err", r,
		"entry", r.Index, "entry_rules", r.Rules, "node_rules", r.Known)
	n.stopRaft()
}

// refuseSnapshot stops this node, whose state machine refused a snapshot of another
// cluster or store that the leader sent (fsm.Restore): Raft saved it in raft/snapshots/
// before the refusal, and the leader would send it again about every 100 ms, each copy
// saved in place of one of the node's own snapshots (two are kept). Raft is stopped
// here, before Restore returns, so that the node takes no further copy and keeps its
// newest own snapshot, and the node is stopped (Fatal). Its next start refuses the saved
// snapshot, naming it (resume). It runs on Raft's FSM goroutine: it must not wait for
// Raft. At start (Raft restoring the node's newest snapshot) there is nothing to stop:
// resume refused such a snapshot before.
func (n *Node) refuseSnapshot(err error) {
	r := n.started.Load()
	if r == nil {
		return
	}
	n.ready.Store(false)
	stopped := n.shutdownRaft(r) // closes Raft's shutdown channel now: no further install is taken
	go func() {
		if err := stopped.Error(); err != nil {
			n.logger.Warn("cluster: stop Raft", "err", err)
		}
	}()
	n.cfg.Fatal(fmt.Errorf("%w; Raft saved that snapshot in %s before this node refused it: its next start refuses it, naming it, until it is removed",
		err, filepath.Join(n.cfg.Dir, engine.RaftDir, "snapshots")))
}

// stopRaft stops Raft in the background, once it started.
func (n *Node) stopRaft() {
	if r := n.started.Load(); r != nil {
		go func() {
			if err := n.shutdownRaft(r).Error(); err != nil {
				n.logger.Warn("cluster: stop Raft", "err", err)
			}
		}()
	}
}

// shutdownRaft stops r, first telling the writers waiting on its entries (raftStopping).
func (n *Node) shutdownRaft(r *raft.Raft) raft.Future {
	n.raftStopOnce.Do(func() { close(n.raftStopping) })
	return r.Shutdown()
}

// futureError waits for f's outcome, or for this node to stop Raft: an Apply that
// raced with the shutdown may have left its entry in Raft's apply queue, which nothing
// reads any more, and f would never complete. Its waiter is then left behind, one per
// such entry, as the node stops.
func (n *Node) futureError(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-n.raftStopping:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

// Problems lists what keeps this node from serving as a member of its cluster: nothing,
// its removal, or an entry whose apply rules its pmd does not know.
func (n *Node) Problems() []string {
	var p []string
	if n.removed.Load() {
		p = append(p, ErrRemoved.Error())
	}
	if r := n.fsm.refused.Load(); r != nil {
		p = append(p, r.Error())
	}
	return p
}

func (n *Node) bootstrap(servers []raft.Server) {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.logger.Error("cluster: bootstrap", "err", err)
		return
	}
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	n.logger.Info("cluster: formed", "nodes", ids)
}

// tryJoin asks the nodes at addrs, and the leader one of them names, to add this node.
func (n *Node) tryJoin(addrs []string) bool {
	req := request{Op: "join", ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAdvertise}
	for _, a := range addrs {
		for range 2 {
			ctx, cancel := context.WithTimeout(n.closing, serviceTimeout)
			resp, _, _, err := n.call(ctx, a, req, serviceTimeout)
			cancel()
			if err == nil && !resp.NotLeader && resp.Added {
				n.addedAsNew(a) // first: once asked says a, the guard is as the reply left it
			}
			if !resp.NotLeader && (err == nil || resp.Error != "") {
				n.askedLeader(a) // it answered as the leader, whether it added this node or not
			}
			switch {
			case err != nil:
				// A node that is not up yet is the usual reason, and the next round
				// asks again; a secret that does not match is not, and is said.
				if errors.Is(err, ErrSecret) || resp.Error != "" {
					if ok, held := n.joinLog.allow(time.Now()); ok {
						n.logger.Warn("cluster: a node refused to add this one", "via", a, "err", err, "suppressed", held)
					}
				}
			case resp.NotLeader && resp.Leader != "" && resp.Leader != a:
				a = resp.Leader
				continue
			case !resp.NotLeader:
				n.logger.Info("cluster: joined", "via", a)
				return true
			}
			break
		}
	}
	return false
}

// lead follows this node's leadership: once it leads and has applied the log before its
// term, it seeds a new cluster's store if need be, takes writes and runs OnLeader; when
// it stops leading, it stops them, and waits for OnLeader to return.
func (n *Node) lead() {
	defer n.wg.Done()
	var stopWork func() = func() { n.ready.Store(false) }
	defer func() { stopWork() }()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.raft.LeaderCh():
			stopWork()
			if !leader {
				n.logger.Info("cluster: no longer the leader")
				continue
			}
			term := n.raft.CurrentTerm()
			if err := n.raft.Barrier(0).Error(); err != nil {
				n.logger.Warn("cluster: leader barrier", "err", err)
				continue // leadership lost meanwhile: LeaderCh says so next
			}
			n.restamp()
			if err := n.seed(); err != nil {
				n.logger.Warn("cluster: seed", "err", err)
				continue
			}
			n.applyMu.Lock()
			n.lastTS = max(n.lastTS, n.fsm.lastTS.Load())
			n.applyMu.Unlock()
			stopRules := n.watchRules()
			n.readyTerm.Store(term)
			n.ready.Store(true)
			n.logger.Info("cluster: leading", "term", n.raft.Stats()["term"], "apply_rules", n.stamp.Load())
			if n.fsm.cluster.get() == uuid.Nil {
				n.logger.Warn("cluster: leading without a cluster id: the cluster was seeded by a pmd before cluster ids, or this node lost raft/CLUSTER_ID and holds no seed entry; " +
					"a node of another cluster seeded from a copy of the same data directory is not told apart when it joins")
			}
			stopWork = func() { n.ready.Store(false); stopRules() }
			if n.cfg.OnLeader != nil {
				stopLeader := n.runLeaderWork()
				stopWork = func() { stopLeader(); stopRules() }
			}
		}
	}
}

// runLeaderWork starts OnLeader and returns what stops it and waits for it. Close ends
// it too (its context is under closing), and waits for it before it stops Raft. Once
// Close has begun it starts nothing: Close may have looked for work to wait for
// already, and would stop Raft under work that had just started.
func (n *Node) runLeaderWork() (stop func()) {
	ctx, cancel := context.WithCancel(n.closing)
	done := make(chan struct{})
	n.workMu.Lock()
	if n.closing.Err() != nil {
		n.workMu.Unlock()
		cancel()
		return func() { n.ready.Store(false) }
	}
	n.workDone = done
	n.workMu.Unlock()
	go func() {
		defer close(done)
		n.cfg.OnLeader(ctx)
	}()
	return func() {
		n.ready.Store(false)
		cancel()
		<-done
	}
}

// seed appends the seed entry when the store has no replicated write yet: every node
// then copies this node's records (a single node's data directory that seeds the
// cluster) and takes its store id.
func (n *Node) seed() error {
	if n.store.Applied() > 0 {
		return nil
	}
	id := n.fsm.cluster.get() // an earlier seed entry's, applied before this leader's barrier
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewRandom(); err != nil {
			return fmt.Errorf("make a cluster id: %w", err)
		}
	}
	b, err := msgpack.Marshal(&seedEntry{StoreID: n.store.ID(), Position: n.store.LastPosition(), Rules: n.stampEntry(), Cluster: id})
	if err != nil {
		return err
	}
	return n.raft.Apply(append([]byte{entrySeed}, b...), 0).Error()
}

// replicate is the store's replicator: the leader puts the write in a Raft entry with
// its timestamp and returns the outcome of applying it. While every voter applies
// batchedRules, the writes that come while an entry of them is in Raft wait, and go out
// together in the next entry (entryWrites), up to maxEntryWrites: each entry costs Raft
// and every node work of its own (its future, its record in each Raft log, its encoding
// to each follower), which writes that share one pay once.
func (n *Node) replicate(ctx context.Context, write []byte) (pmd.WriteResult, error) {
	if !n.ready.Load() {
		return pmd.WriteResult{}, &pmd.UnavailableError{Cause: n.notLeader()}
	}
	if n.stamp.Load() < batchedRules {
		return n.replicateOne(ctx, write)
	}
	w := &queuedWrite{ctx: ctx, write: write, done: make(chan outcome, 1)}
	n.queueMu.Lock()
	n.queue = append(n.queue, w)
	batch := n.takeQueued()
	n.queueMu.Unlock()
	if batch != nil {
		n.sendQueued(batch)
	}
	select {
	case o := <-w.done:
		return o.res, o.err
	case <-ctx.Done():
		return pmd.WriteResult{}, ctx.Err()
	}
}

// queuedWrite is a write waiting for its entry's outcome.
type queuedWrite struct {
	ctx   context.Context // its writer's: one that ended before the write was sent drops it
	write []byte
	done  chan outcome // buffered: answered once
}

// takeQueued returns the writes to send in the next entry, up to maxEntryWrites and
// maxEntryBytes (one at least), if no entry of queued writes is in flight (then one is,
// from now on); nil otherwise. A write whose writer has given up (its context ended:
// replicate returned its error, and the write is not in Raft) is dropped, not sent: a
// client that retries it without its event ids would otherwise have it written twice,
// and its bytes, no longer counted by the server's memory budget, would wait here. Under
// queueMu.
func (n *Node) takeQueued() []*queuedWrite {
	if n.inFlight {
		return nil
	}
	n.queue = slices.DeleteFunc(n.queue, func(w *queuedWrite) bool { return w.ctx.Err() != nil })
	if len(n.queue) == 0 {
		return nil
	}
	k, size := 1, len(n.queue[0].write)
	for k < len(n.queue) && k < maxEntryWrites && size+len(n.queue[k].write) <= maxEntryBytes {
		size += len(n.queue[k].write)
		k++
	}
	batch := slices.Clone(n.queue[:k])
	n.queue = slices.Delete(n.queue, 0, k) // clears the tail: answered writes are not held
	n.inFlight = true
	return batch
}

// sendQueued appends the entry of batch (or, if the stamp fell below batchedRules since
// they queued, an entry for each) and answers its writers once it is applied, from a
// goroutine of its own, which then sends the writes that queued meanwhile.
func (n *Node) sendQueued(batch []*queuedWrite) {
	n.applyMu.Lock()
	stamp := n.stampEntry()
	var futures []raft.ApplyFuture
	var err error
	if stamp >= batchedRules {
		e := writesEntry{Rules: stamp, Writes: make([]writeItem, len(batch))}
		for i, w := range batch {
			e.Writes[i] = writeItem{Timestamp: n.nextTimestamp(), Write: w.write}
		}
		var b []byte
		if b, err = msgpack.Marshal(&e); err == nil {
			// Timestamps grow in log order: the entry is queued under the same lock.
			futures = append(futures, n.raft.Apply(append([]byte{entryWrites}, b...), 0))
		}
	} else {
		for _, w := range batch {
			var b []byte
			if b, err = msgpack.Marshal(&writeEntry{Timestamp: n.nextTimestamp(), Write: w.write, Rules: stamp}); err != nil {
				break
			}
			futures = append(futures, n.raft.Apply(append([]byte{entryWrite}, b...), 0))
		}
	}
	n.applyMu.Unlock()
	go func() {
		outs := n.entryOutcomes(futures, len(batch), err)
		n.queueMu.Lock()
		n.inFlight = false
		next := n.takeQueued()
		n.queueMu.Unlock()
		if next != nil {
			n.sendQueued(next)
		}
		for i, w := range batch {
			w.done <- outs[i]
		}
	}()
}

// entryOutcomes waits for the entries of writes writes (one entryWrites entry, or one
// entry each) and returns each write's outcome; err is why they could not be prepared.
func (n *Node) entryOutcomes(futures []raft.ApplyFuture, writes int, err error) []outcome {
	outs := make([]outcome, writes)
	fill := func(from int, o outcome) {
		for i := from; i < writes; i++ {
			outs[i] = o
		}
	}
	if err != nil && len(futures) == 0 {
		fill(0, outcome{err: err})
		return outs
	}
	for i, f := range futures {
		if err := n.futureError(f); err != nil {
			fill(i, outcome{err: &pmd.UnavailableError{Cause: fmt.Errorf("cluster: the write may not have been committed: %w", err)}})
			return outs
		}
		switch o := f.Response().(type) {
		case *writesOutcome:
			if o.err != nil || len(o.outs) != writes {
				fill(0, outcome{err: cmp.Or(o.err, fmt.Errorf("cluster: entry %d has %d outcomes for %d writes", f.Index(), len(o.outs), writes))})
				return outs
			}
			copy(outs, o.outs)
		case *outcome:
			if len(futures) == 1 {
				fill(0, *o) // the entry's, refused
			} else {
				outs[i] = *o
			}
		default:
			fill(i, outcome{err: fmt.Errorf("cluster: entry %d has no outcome", f.Index())})
			return outs
		}
	}
	if err != nil {
		fill(len(futures), outcome{err: err})
	}
	return outs
}

// nextTimestamp is the timestamp of the next write: the leader's clock, above the last
// one given. Under applyMu.
func (n *Node) nextTimestamp() int64 {
	ts := max(time.Now().UnixNano(), n.lastTS+1)
	n.lastTS = ts
	return ts
}

// replicateOne puts the write in an entry of its own (entryWrite), as a leader does
// while a voter applies rules older than batchedRules.
func (n *Node) replicateOne(ctx context.Context, write []byte) (pmd.WriteResult, error) {
	n.applyMu.Lock()
	b, err := msgpack.Marshal(&writeEntry{Timestamp: n.nextTimestamp(), Write: write, Rules: n.stampEntry()})
	if err != nil {
		n.applyMu.Unlock()
		return pmd.WriteResult{}, err
	}
	// Timestamps grow in log order: the entry is queued under the same lock.
	f := n.raft.Apply(append([]byte{entryWrite}, b...), 0)
	n.applyMu.Unlock()
	done := make(chan error, 1)
	go func() { done <- n.futureError(f) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return pmd.WriteResult{}, ctx.Err()
	}
	if err != nil {
		return pmd.WriteResult{}, &pmd.UnavailableError{Cause: fmt.Errorf("cluster: the write may not have been committed: %w", err)}
	}
	o, ok := f.Response().(*outcome)
	if !ok {
		return pmd.WriteResult{}, fmt.Errorf("cluster: entry %d has no outcome", f.Index())
	}
	return o.res, o.err
}

func (n *Node) notLeader() error {
	if n.removed.Load() {
		return ErrRemoved
	}
	if r := n.fsm.refused.Load(); r != nil {
		return r
	}
	if _, id := n.raft.LeaderWithID(); id != "" {
		return fmt.Errorf("%w (the leader is %s)", ErrNotLeader, id)
	}
	return ErrNoLeader
}

// SetSecrets replaces the cluster secrets of a node started with some (Config.Secrets),
// for the connections from now on: a rotation without a restart. It refuses none (a node
// with a secret keeps one), and a node started without a secret.
func (n *Node) SetSecrets(secrets [][]byte) error {
	if len(*n.mux.keys.Load()) == 0 {
		return errors.New("cluster: this node was started without a cluster secret: restart it with one")
	}
	if len(secrets) == 0 {
		return errors.New("cluster: no cluster secret given: a node started with one keeps one")
	}
	if err := checkSecrets(secrets); err != nil {
		return err
	}
	keys := keyring(slices.Clone(secrets))
	n.mux.keys.Store(&keys)
	return nil
}

// RefusedConnections is how many connections to this node's Raft address were closed
// before they were served: without the cluster secret, with another one, or without a
// header.
func (n *Node) RefusedConnections() uint64 { return n.mux.refused.Load() }

// IsLeader reports whether this node leads and takes writes.
func (n *Node) IsLeader() bool { return n.ready.Load() && n.raft.State() == raft.Leader }

// AppliedIndex is the Raft index up to which this node's store is current (see
// appliedThrough): on an idle cluster, every node's reaches the commit index.
func (n *Node) AppliedIndex() uint64 { return n.appliedThrough() }

// WaitApplied returns once this node's store is current up to the Raft entry at index
// (AppliedIndex), or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.waitThrough(ctx, index)
}

// appliedThrough is the Raft index up to which this node's store is current: the last
// entry its state machine applied (fsm.applied), and after it the committed entries
// Raft hands on without the state machine ever seeing them (the no-op a leader starts
// its term with, barriers), which change nothing in the store. Counting only the first,
// a node's applied index would stay behind the commit index on an idle cluster for
// good, and a wait for an index that is a no-op would never end.
func (n *Node) appliedThrough() uint64 {
	at := max(n.fsm.applied.Load(), n.through.Load())
	handed := n.raft.AppliedIndex() // committed, and handed to the state machine (or skipped)
	for at < handed {
		// The cache knows the type of each of the latest entries, those whose data it let
		// go too: reading the entry, on every response of the node, read a write near
		// --max-body whole for its type.
		typ, ok := n.entries.typeOf(at + 1)
		if !ok {
			var l raft.Log
			if err := n.entries.GetLog(at+1, &l); err != nil {
				// Compacted away: the entry is in a snapshot, which the store holds (it took
				// it, or Raft restored it before counting it applied).
				s := n.lastSnapshot()
				if s <= at {
					break
				}
				at = min(s, handed)
				continue
			}
			typ = l.Type
		}
		if typ != raft.LogNoop && typ != raft.LogBarrier {
			break // the state machine sees it: fsm.applied says when it is applied
		}
		at++
	}
	for {
		old := n.through.Load()
		if at <= old || n.through.CompareAndSwap(old, at) {
			return max(at, old)
		}
	}
}

// lastSnapshot is the Raft index of the node's newest snapshot, 0 if none.
func (n *Node) lastSnapshot() uint64 {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0
	}
	return metas[0].Index
}

// waitThrough returns once appliedThrough reaches index, or ctx ends.
func (n *Node) waitThrough(ctx context.Context, index uint64) error {
	var tick *time.Ticker
	for {
		at := n.appliedThrough()
		if at >= index {
			return nil
		}
		if r := n.fsm.refused.Load(); r != nil {
			return r // halted: it applies nothing more
		}
		if n.raft.AppliedIndex() > at {
			// Raft handed on the entry after at, and it reaches the state machine
			// (appliedThrough passes over those that do not): wait for its apply.
			if err := n.fsm.waitApplied(ctx, at+1); err != nil {
				return err
			}
			continue
		}
		// Raft has not handed on the entry after at yet, which may be one the state
		// machine never sees: nothing to wait on but Raft's applied index.
		if tick == nil {
			tick = time.NewTicker(time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadBarrier returns once this node, still the leader, has applied every entry
// committed before the call: a read after it is linearizable. It is Raft's read index
// (as rqlite's linearizable reads): it notes the commit index, confirms that it still
// leads in the term in which it became ready with a heartbeat round to a quorum
// (VerifyLeader, which appends nothing to the log), and waits until its store is
// current up to that index. Becoming ready, the node committed a barrier in that term,
// so the commit index it notes covers every write acknowledged before the call. An
// earlier version committed a barrier entry per read instead: a quorum fsync each, and
// an entry the state machine never sees at the end of the log.
func (n *Node) ReadBarrier(ctx context.Context) error {
	term := n.readyTerm.Load()
	if !n.IsLeader() || n.raft.CurrentTerm() != term {
		return n.notLeader()
	}
	commit := n.raft.CommitIndex()
	done := make(chan error, 1)
	go func() { done <- n.raft.VerifyLeader().Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if n.raft.CurrentTerm() != term {
		return fmt.Errorf("%w: a new term began during the read", ErrNotLeader)
	}
	return n.waitThrough(ctx, commit)
}

// LeaderHTTP returns the HTTP address of the leader, waiting up to wait for one to be
// known; ErrNoLeader after that.
func (n *Node) LeaderHTTP(ctx context.Context, wait time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.removed.Load() {
			return "", ErrRemoved
		}
		if r := n.fsm.refused.Load(); r != nil {
			return "", r
		}
		addr, id := n.raft.LeaderWithID()
		term := n.raft.CurrentTerm()
		if id != "" {
			if string(id) == n.cfg.NodeID {
				if n.IsLeader() {
					return n.cfg.HTTPAddr, nil
				}
			} else if l := n.leaderAt.Load(); l != nil && l.id == id && l.addr == addr && l.term == term {
				return l.http, nil
			} else if http, ok := n.askLeader(ctx, leaderKey{id: id, addr: addr, term: term}); ok {
				return http, nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return "", fmt.Errorf("%w within %s: %s", ErrNoLeader, wait, n.raft.State())
		}
	}
}

// leaderHTTP is what a node learned of a leader: its id and Raft address, the term in
// which the node learned it (a new term asks again: the leader may have changed, or
// restarted with another HTTP address) and its HTTP address.
type leaderHTTP struct {
	id   raft.ServerID
	addr raft.ServerAddress
	term uint64
	http string
}

// leaderKey is a leader, at its Raft address, in a term.
type leaderKey struct {
	id   raft.ServerID
	addr raft.ServerAddress
	term uint64
}

// leaderAsk is an ask of a leader's HTTP address in flight (askLeader): http and ok are
// set before done is closed.
type leaderAsk struct {
	key  leaderKey
	done chan struct{}
	http string
	ok   bool
}

// askLeader asks the leader k for its HTTP address (info) and notes it (leaderAt). The
// callers that need it at the same time share one ask: at a term change every request
// a follower forwards needs it at once, and as many connections to the leader's Raft
// port from one host (behind a NAT or proxy, RaftAdvertise) would exceed its per-host
// handshake slots (muxLimits.perHost) and be refused. A caller whose ctx ends stops
// waiting; the ask goes on under the ctx of the caller that made it.
func (n *Node) askLeader(ctx context.Context, k leaderKey) (string, bool) {
	n.askMu.Lock()
	if a := n.asking; a != nil && a.key == k {
		n.askMu.Unlock()
		select {
		case <-a.done:
			return a.http, a.ok
		case <-ctx.Done():
			return "", false
		}
	}
	a := &leaderAsk{key: k, done: make(chan struct{})}
	n.asking = a
	n.askMu.Unlock()
	resp, _, _, err := n.call(ctx, string(k.addr), request{Op: "info"}, time.Second)
	if err == nil && resp.Info != nil && resp.Info.Ready {
		a.http, a.ok = resp.Info.HTTPAddr, true
		n.leaderAt.Store(&leaderHTTP{id: k.id, addr: k.addr, term: k.term, http: a.http})
	}
	n.askMu.Lock()
	if n.asking == a {
		n.asking = nil
	}
	n.askMu.Unlock()
	close(a.done)
	return a.http, a.ok
}

func (n *Node) info() Info {
	addr, id := n.raft.LeaderWithID()
	st := n.raft.Stats()
	var term uint64
	fmt.Sscan(st["term"], &term)
	state := strings.ToLower(n.raft.State().String())
	if n.removed.Load() {
		state = "removed"
	} else if n.fsm.refused.Load() != nil {
		state = "halted"
	}
	return Info{
		ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAdvertise, HTTPAddr: n.cfg.HTTPAddr,
		State: state, LeaderID: string(id), LeaderAddr: string(addr),
		Term: term, CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.AppliedIndex(),
		Position: n.store.LastPosition(), InCluster: n.hasState(), Ready: n.IsLeader(), Rules: n.fsm.rules,
		Cluster: idString(n.fsm.cluster.get()),
	}
}

// LastContact is when this node last heard from the leader (a follower), or from a
// quorum (the leader); zero if never.
func (n *Node) LastContact() time.Time {
	if n.raft.State() == raft.Leader {
		return time.Now()
	}
	return n.raft.LastContact()
}

// Self is what this node says of itself: state, term, leader, indexes.
func (n *Node) Self() Info { return n.info() }

// NodeStatus is one member of the cluster as this node sees it.
type NodeStatus struct {
	Info
	Reachable bool
	Voter     bool
}

// Status is how the cluster stands, as this node sees it: its own Info, and each
// member's, asked over the cluster service (State "unreachable" where it did not answer).
type Status struct {
	Self  Info
	Nodes []NodeStatus
}

// Status asks every member of the configuration how it stands. A removed node lists
// itself too, as "removed".
func (n *Node) Status(ctx context.Context) (Status, error) {
	st := Status{Self: n.info()}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return st, err
	}
	servers := f.Configuration().Servers
	if n.removed.Load() && !n.member() {
		servers = append(slices.Clone(servers), raft.Server{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.RaftAdvertise), Suffrage: raft.Nonvoter})
	}
	st.Nodes = make([]NodeStatus, len(servers))
	for i, s := range servers {
		ns := &st.Nodes[i]
		ns.ID, ns.RaftAddr, ns.Voter, ns.State = string(s.ID), string(s.Address), s.Suffrage == raft.Voter, "unreachable"
		if string(s.ID) == n.cfg.NodeID {
			ns.Info, ns.Reachable = st.Self, true
		}
	}
	n.askInfo(ctx, servers, func(i int, info *Info) {
		st.Nodes[i].Info, st.Nodes[i].Reachable = *info, true
	})
	return st, nil
}

// Join adds the node id at raftAddr to the cluster, through the leader.
func (n *Node) Join(ctx context.Context, id, raftAddr string) error {
	return n.viaLeader(ctx, request{Op: "join", ID: id, RaftAddr: raftAddr})
}

// Remove takes the node id out of the cluster, through the leader.
func (n *Node) Remove(ctx context.Context, id string) error {
	return n.viaLeader(ctx, request{Op: "remove", ID: id})
}

func (n *Node) viaLeader(ctx context.Context, req request) error {
	if n.IsLeader() {
		if req.Op == "join" {
			return n.addVoter(ctx, req.ID, req.RaftAddr)
		}
		return n.removeServer(ctx, req.ID)
	}
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return ErrNoLeader
	}
	resp, _, _, err := n.call(ctx, string(addr), req, serviceTimeout)
	if err != nil {
		return err
	}
	if resp.NotLeader {
		return fmt.Errorf("%w: %s", ErrNoLeader, resp.Error)
	}
	return nil
}

func (n *Node) addVoter(ctx context.Context, id, addr string) error {
	_, err := n.addMember(ctx, id, addr)
	return err
}

// addMember adds id at addr as a voter, and reports whether it did: false for a node the
// configuration names already at addr (a restarted node asking again), which may have
// acknowledged entries; true for a new member (tryJoin lifts its vote guard).
func (n *Node) addMember(ctx context.Context, id, addr string) (bool, error) {
	if id == "" || addr == "" {
		return false, errors.New("cluster: a join needs the node's id and Raft address")
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	servers := f.Configuration().Servers
	var replaced []raft.Server
	for _, s := range servers {
		if string(s.ID) == id && string(s.Address) == addr {
			return false, nil // already a member: a restarted node asking again
		}
		if string(s.ID) == id || string(s.Address) == addr {
			replaced = append(replaced, s)
		}
	}
	for _, s := range replaced {
		if err := n.replaceCheck(ctx, s, id, addr); err != nil {
			return false, err
		}
	}
	if err := n.checkJoiner(ctx, id, addr); err != nil {
		return false, err
	}
	// From the entry that adds it, the node is a voter whose apply rules the entries'
	// stamp must not exceed: learn them first (what it said before, at another
	// address, may be another release's). It replays the entries of the log, stamped
	// before: older rules than theirs would halt it, and the cluster with it (a voter
	// that takes no entries), so it is not added.
	n.rulesMu.Lock()
	delete(n.rulesKnown, raft.ServerID(id))
	n.rulesMu.Unlock()
	n.askRules(ctx, []raft.Server{{ID: raft.ServerID(id), Address: raft.ServerAddress(addr), Suffrage: raft.Voter}})
	inLog, err := n.logRules()
	if err != nil {
		return false, fmt.Errorf("cluster: read the Raft log's apply rules: %w", err)
	}
	n.rulesMu.Lock()
	joins, ok := n.rulesKnown[raft.ServerID(id)]
	if !ok {
		joins = unstampedRules // it did not say: a pmd from before rules versions
	}
	if need := max(inLog, n.stamped); joins < need {
		n.rulesMu.Unlock()
		return false, fmt.Errorf("%w: node %s's pmd applies rules up to version %d, and the Raft log it would replay holds entries stamped with version %d: "+
			"upgrade its pmd to a release with apply rules version %d or later (this node's pmd applies up to version %d) and start it again",
			ErrJoinRules, id, joins, need, need, n.fsm.rules)
	}
	n.joining[raft.ServerID(id)] = true
	stamp := n.restampLocked()
	n.rulesMu.Unlock()
	defer func() {
		n.rulesMu.Lock()
		delete(n.joining, raft.ServerID(id))
		n.rulesMu.Unlock()
	}()
	for _, s := range replaced {
		// The same id at a new address, or another id at this address: the old entry
		// goes first, and the old node is told, as any removed node (removeServer).
		if err := n.removeServer(ctx, string(s.ID)); err != nil {
			return false, err
		}
	}
	n.logger.Info("cluster: adding a node", "id", id, "raft_addr", addr, "apply_rules", stamp)
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0).Error(); err != nil {
		return false, err
	}
	return true, nil
}

// logRules is the highest apply rules version stamped on an entry of this node's Raft
// log: a node added now replays them (those after the snapshot it is sent, or all).
// It reads the whole log, at most the entries since the last snapshot and TrailingLogs.
func (n *Node) logRules() (uint32, error) {
	first, last, err := n.logs.bounds()
	if err != nil {
		return 0, err
	}
	highest := uint32(0)
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted meanwhile: in a snapshot, which holds no stamps
			}
			return 0, err
		}
		if l.Type != raft.LogCommand || len(l.Data) == 0 {
			continue
		}
		var e struct {
			Rules uint32 `msgpack:"r,omitempty"` // writeEntry's, writesEntry's and seedEntry's
		}
		if l.Data[0] != entryWrite && l.Data[0] != entryWrites && l.Data[0] != entrySeed || msgpack.Unmarshal(l.Data[1:], &e) != nil {
			continue // the state machine refuses or reports it: nothing stamped to replay
		}
		highest = max(highest, rulesOf(e.Rules))
	}
	return highest, nil
}

// removeServer takes the node id out of the configuration, then tells it, so that it
// stops its Raft (leave). A node that does not hear of it (it was down) asks to be added
// again when it starts with --join (rejoin), so it can be removed for good only by
// keeping it stopped, or started without --join. It refuses (removeQuorum) a removal
// that leaves voters of which too few answer to commit it.
func (n *Node) removeServer(ctx context.Context, id string) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	servers := f.Configuration().Servers
	addr, err := removeCheck(servers, id)
	if err != nil {
		return err
	}
	if err := removeQuorum(servers, id, n.answering(ctx, servers)); err != nil {
		return err
	}
	n.logger.Info("cluster: removing a node", "id", id)
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return err
	}
	switch {
	case id == n.cfg.NodeID:
		n.leave("itself")
	case addr != "":
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if resp, _, _, err := n.call(cctx, string(addr), request{Op: "removed", ID: id}, time.Second); err != nil || resp.Error != "" {
			n.logger.Info("cluster: could not tell the removed node: it keeps running Raft until it is stopped", "id", id, "err", err, "answer", resp.Error)
		}
	}
	return nil
}

// rulesRefresh is how often the leader asks its voters which apply rules they know: a
// voter restarted with another release says so within this.
const rulesRefresh = 10 * time.Second

// watchRules asks the voters which apply rules they know, now and every rulesRefresh,
// and sets the stamp to the least (leastRules), until the returned stop is called (which
// waits for it). Until the first answers the leader stamps what it knew before, which
// is never more than a voter it never heard from is taken to know.
func (n *Node) watchRules() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(rulesRefresh)
		defer t.Stop()
		for {
			if f := n.raft.GetConfiguration(); f.Error() == nil {
				n.askRules(ctx, f.Configuration().Servers)
				n.restamp()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// askRules asks the voters among servers, at once, which apply rules they know, and
// notes the answers; one that does not answer within a second keeps what it said
// before.
func (n *Node) askRules(ctx context.Context, servers []raft.Server) {
	n.askVoters(ctx, servers, func(s raft.Server, info *Info) {
		n.rulesMu.Lock()
		n.rulesKnown[s.ID] = rulesOf(info.Rules)
		n.rulesMu.Unlock()
	})
}

// askVoters asks every voter of servers but this node, at once, for its info (the status
// route's, within a second), and calls answered, from the asking goroutines, with the
// answers that name the voter asked; it returns once every voter answered or timed out.
func (n *Node) askVoters(ctx context.Context, servers []raft.Server, answered func(raft.Server, *Info)) {
	voters := slices.DeleteFunc(slices.Clone(servers), func(s raft.Server) bool { return s.Suffrage != raft.Voter })
	n.askInfo(ctx, voters, func(i int, info *Info) {
		if info.ID == string(voters[i].ID) {
			answered(voters[i], info)
		}
	})
}

// askInfo asks every server of servers but this node, at once, for its info (the status
// route's, within a second), and calls answered, from the asking goroutines, with the
// index in servers of each that answered and its answer; it returns once every server
// answered or timed out.
func (n *Node) askInfo(ctx context.Context, servers []raft.Server, answered func(int, *Info)) {
	var wg sync.WaitGroup
	for i, s := range servers {
		if string(s.ID) == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			resp, _, _, err := n.call(cctx, string(s.Address), request{Op: "info"}, time.Second)
			if err == nil && resp.Info != nil {
				answered(i, resp.Info)
			}
		}()
	}
	wg.Wait()
}

// restamp sets the stamp to the least apply rules version that this node and every voter
// of the latest configuration, and every node being added (joining), apply, by what
// each said when last asked.
func (n *Node) restamp() {
	n.rulesMu.Lock()
	defer n.rulesMu.Unlock()
	n.restampLocked()
}

// restampLocked is restamp with rulesMu held: addVoter checks and counts a joining node
// and sets the stamp at once, so that no restamp from a configuration without it comes
// between.
func (n *Node) restampLocked() uint32 {
	servers := n.raft.GetConfiguration().Configuration().Servers
	for id := range n.joining {
		servers = append(servers, raft.Server{ID: id, Suffrage: raft.Voter})
	}
	s := leastRules(raft.ServerID(n.cfg.NodeID), n.fsm.rules, servers, n.rulesKnown)
	n.stamp.Store(s)
	return s
}

// stampEntry is the stamp for an entry being prepared, noted (stamped) so that a join
// checked after it counts it while the entry may not be in the log yet.
func (n *Node) stampEntry() uint32 {
	n.rulesMu.Lock()
	defer n.rulesMu.Unlock()
	s := n.stamp.Load()
	n.stamped = max(n.stamped, s)
	return s
}

// leastRules is the least apply rules version of self (which applies own) and the
// voters among servers, by known: a voter not in known may run a pmd from before rules
// versions, which applies unstampedRules.
func leastRules(self raft.ServerID, own uint32, servers []raft.Server, known map[raft.ServerID]uint32) uint32 {
	least := own
	for _, s := range servers {
		if s.Suffrage != raft.Voter || s.ID == self {
			continue
		}
		v, ok := known[s.ID]
		if !ok {
			v = unstampedRules
		}
		least = min(least, v)
	}
	return least
}

// fetch copies the records after the store's last position up to position to from a
// member that has them: the leader first. It tries every member in turn, and again after
// a wait that doubles up to copyBackoffMax, until it has them or the node stops: Raft
// waits for the state machine meanwhile, and a copy given up would leave the node with
// a snapshot its store does not reach.
func (n *Node) fetch(ctx context.Context, to uint64) error {
	r := n.started.Load()
	if r == nil {
		// Raft restores the node's own last snapshot before it starts: the store lacks
		// records it had (it ran with --no-sync and lost them), and no peer is known yet.
		// Only a snapshot that names no other member gets here (resume): a one-node
		// cluster, whose last voter cannot be removed and whose lost records no one holds.
		return fmt.Errorf("cluster: the store is behind this node's own snapshot (position %d of %d): it lost records, and its snapshot names no other member to copy them from "+
			"(a one-node cluster: no one else holds them, and its last voter cannot be removed); restore its data directory from a backup that holds them, "+
			"or serve the records it holds as a single node's (stop it, start it without --node-id and with --leave-cluster) and seed a new cluster from them once written to, "+
			"or start it with an empty data directory as a new cluster (the records are lost)",
			n.store.LastPosition(), to)
	}
	return n.copyRecords(ctx, to, func() []string { return n.peers(r) })
}

// peers lists the Raft addresses of the other members: the leader first.
func (n *Node) peers(r *raft.Raft) []string {
	var addrs []string
	if addr, _ := r.LeaderWithID(); addr != "" {
		addrs = append(addrs, string(addr))
	}
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) != n.cfg.NodeID && !slices.Contains(addrs, string(s.Address)) {
				addrs = append(addrs, string(s.Address))
			}
		}
	}
	return addrs
}

// copyBackoff and copyBackoffMax bound the wait between two rounds of copyRecords.
const (
	copyBackoff    = time.Second
	copyBackoffMax = 30 * time.Second
)

// copyRecords copies the records after the store's last position up to to, from the
// first of peers() that has them, in rounds until it has them, ctx ends or the node
// stops. Each round asks peers() again (the leader may have changed), and starts from
// where the store is: what a peer sent before it failed is kept.
func (n *Node) copyRecords(ctx context.Context, to uint64, peers func() []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := copyBackoff
	for {
		from := n.store.LastPosition() + 1
		if from > to {
			return nil
		}
		var errs []error
		for _, a := range peers() {
			if ctx.Err() != nil {
				break // no other member is asked once the copy is called off
			}
			start := time.Now()
			if err := n.fetchFrom(ctx, a, from, to); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a, err))
				if from = n.store.LastPosition() + 1; from > to {
					return nil
				}
				continue
			}
			n.logger.Info("cluster: copied records from a peer", "peer", a, "from", from, "to", to, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		err := errors.Join(errs...)
		if err == nil {
			err = errors.New("no other member is known")
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: copy records %d-%d: %w (%v)", from, to, ctx.Err(), err)
		}
		n.logger.Warn("cluster: copying records from a peer failed: waiting to ask the members again", "from", from, "to", to, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("cluster: copy records %d-%d: %w (%v)", from, to, ctx.Err(), err)
		}
		wait = min(2*wait, copyBackoffMax)
	}
}

// fetchFrom copies records from..to from the node at addr. No overall deadline (a
// far-behind node may need many records), but a peer that sends nothing for
// copyStall is given up: at the connection, the answer, and within the records.
func (n *Node) fetchFrom(ctx context.Context, addr string, from, to uint64) error {
	stall := cmp.Or(n.copyStall, serviceTimeout)
	resp, br, c, err := n.call(ctx, addr, request{Op: "records", From: from, To: to}, stall)
	if err != nil {
		return err
	}
	if c == nil {
		return errors.New(resp.Error)
	}
	defer c.Close()
	touch := func() { _ = c.SetReadDeadline(time.Now().Add(stall)) }
	return readRecords(br, 4<<20, touch, func(recs []pmdlog.Record) error {
		return n.store.CopyRecords(ctx, recs)
	})
}
