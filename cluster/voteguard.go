package cluster

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// voteGuard is the Raft transport of a node that started with no Raft state at all (no
// log entry, no snapshot): it answers, for Raft, the vote and pre-vote requests of a
// candidate whose log holds more than a new cluster's bootstrap configuration, with a
// refusal, while the guard is on. Such a node may be a member that lost its data
// directory and was started again empty under its id and address, without its removal
// first (docs/cluster.md): Raft would grant the vote at once (it has no configuration to
// check the candidate against, no entry to compare), holding none of the entries it
// acknowledged, and a candidate without an acknowledged write could then lead with its
// vote and lose the write. Refusing a vote never costs safety, only an election.
//
// The guard watches the AppendEntries requests that come through it and keeps the
// highest commit index a leader sent in them (LeaderCommitIndex; a heartbeat carries
// none and does not count). It goes off, for good, once the node has had at least one
// AppendEntries with a commit index and its Raft LastIndex (its last log entry's or
// snapshot's, whichever is higher) is at least that highest commit index: its log then
// holds every entry committed when it came back, those it acknowledged before it lost
// them included. Its first entry is not enough: one AppendEntries batch (up to 256
// entries) or one snapshot gives it some, and a node that then lost its leader would vote
// on a part of the log. It also goes off when the leader answers this node's join saying
// it added it to the configuration (lift): the node was no member, so it acknowledged
// nothing (a member removed, then started empty with --join). A leader that found it a
// member already, or a pmd whose join reply does not say, leaves it on: so a new node added
// from outside (pmd cluster join) before its own join arrived, or whose first join reply
// was lost, keeps it until it has caught up, refusing meanwhile candidates other than the
// leader it asked.
//
// While it is on, a new cluster's first election (--bootstrap-expect: the nodes that have
// not formed it yet vote for the one that has) is let through: its candidates hold only
// the bootstrap configuration, index 1, and nothing before it was acknowledged. So is a
// candidate that answered this node's join as the leader since the node started
// (tryJoin): a leader holds every committed entry, those this node acknowledged before
// it lost them included, and keeps them; and a leader adding this node to a cluster
// whose quorum needs it (a second node) that lost its leadership before the node had the
// log could be elected again only with its vote.
//
// The guard sits in front of Raft's consumer channel only: a node that starts with state
// gets the plain transport (Node.open), and its RPCs take no extra hop. Heartbeats (no
// entries, no commit index) take the transport's own path to Raft and are not seen.
type voteGuard struct {
	guarded
	out chan raft.RPC
	// lastIndex is the node's Raft LastIndex: its last log entry's or snapshot's index,
	// whichever is higher; 0 before Raft starts.
	lastIndex func() uint64
	// asked reports whether the candidate at this Raft address answered this node's
	// join as the leader (Node.askedLeader).
	asked func(addr string) bool
	term  func() uint64
	self  raft.RPCHeader
	warn  func(candidate string, index, term uint64)

	mu       sync.Mutex
	appended bool   // guarded by mu: an AppendEntries with a commit index came through
	commit   uint64 // guarded by mu: the highest LeaderCommitIndex of those
	off      atomic.Bool
	// added says a leader's join reply said it added the node as a new member
	// (Node.addedAsNew), whether the guard was still on then (lift) or already off.
	added atomic.Bool

	refused   atomic.Uint64
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// guarded is what a voteGuard stands in front of: Raft's network transport, which
// serves pre-votes (Raft asks for none through a transport without them) and closes.
type guarded interface {
	raft.Transport
	raft.WithPreVote
	raft.WithClose
}

func newVoteGuard(t guarded, self raft.RPCHeader, lastIndex func() uint64, asked func(string) bool, term func() uint64, warn func(string, uint64, uint64)) *voteGuard {
	g := &voteGuard{guarded: t, out: make(chan raft.RPC), lastIndex: lastIndex, asked: asked, term: term, self: self, warn: warn, done: make(chan struct{})}
	g.wg.Add(1)
	go g.run()
	return g
}

// Consumer is what Raft reads its RPCs from: those of the transport the guard did not
// answer.
func (g *voteGuard) Consumer() <-chan raft.RPC { return g.out }

// Close stops the guard and the transport.
func (g *voteGuard) Close() error {
	g.closeOnce.Do(func() { close(g.done) })
	err := g.guarded.Close()
	g.wg.Wait()
	return err
}

func (g *voteGuard) run() {
	defer g.wg.Done()
	in := g.guarded.Consumer()
	for {
		select {
		case rpc := <-in:
			if g.refuse(rpc) {
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.done:
				return
			}
		case <-g.done:
			return
		}
	}
}

// refuse answers rpc with a refusal, and reports whether it did: a vote or pre-vote
// request of a candidate past a bootstrap configuration while the guard is on. It
// keeps the highest commit index of the AppendEntries requests it sees.
func (g *voteGuard) refuse(rpc raft.RPC) bool {
	var (
		header      raft.RPCHeader
		index, term uint64
		resp        any
	)
	switch req := rpc.Command.(type) {
	case *raft.AppendEntriesRequest:
		g.caughtUp() // on what came before this one
		if req.LeaderCommitIndex == 0 {
			return false // a heartbeat (Raft's are sent without one), or a cluster that committed nothing yet
		}
		g.mu.Lock()
		g.appended = true
		g.commit = max(g.commit, req.LeaderCommitIndex)
		g.mu.Unlock()
		return false
	case *raft.RequestVoteRequest:
		header, index, term = req.RPCHeader, req.LastLogIndex, req.LastLogTerm
		resp = &raft.RequestVoteResponse{RPCHeader: g.self, Term: g.term()}
	case *raft.RequestPreVoteRequest:
		header, index, term = req.RPCHeader, req.LastLogIndex, req.LastLogTerm
		resp = &raft.RequestPreVoteResponse{RPCHeader: g.self, Term: g.term()}
	default:
		return false
	}
	addr := g.DecodePeer(header.Addr)
	if index <= bootstrapIndex || g.asked(string(addr)) || g.caughtUp() {
		return false
	}
	g.refused.Add(1)
	g.warn(fmt.Sprintf("%s at %s", header.ID, addr), index, term)
	rpc.Respond(resp, nil)
	return true
}

// caughtUp reports whether the guard is off, and turns it off for good if the node has
// had an AppendEntries with a commit index and holds the log up to the highest commit index sent in them.
// Raft may still be storing the entries of the last request passed on: it then reports
// false, and the next request finds them.
func (g *voteGuard) caughtUp() bool {
	if g.off.Load() {
		return true
	}
	g.mu.Lock()
	appended, commit := g.appended, g.commit
	g.mu.Unlock()
	if !appended || g.lastIndex() < commit {
		return false
	}
	g.off.Store(true)
	return true
}

// lift turns the guard off for good: a leader added the node to the configuration as a
// new member (tryJoin), so it acknowledged nothing before.
func (g *voteGuard) lift() { g.off.Store(true) }

// bootstrapIndex is the index of the configuration entry that forms a cluster
// (BootstrapCluster): the only entry of its nodes' logs until their first leader.
const bootstrapIndex = 1

// guardVotes returns the transport Raft is to use: t itself for a node with Raft state,
// or a voteGuard in front of it for one without (see voteGuard).
func (n *Node) guardVotes(t *raft.NetworkTransport, empty bool) raft.Transport {
	if !empty {
		return t
	}
	warned := logLimiter{period: 10 * time.Second}
	self := raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte(n.cfg.NodeID),
		Addr:            t.EncodePeer(raft.ServerID(n.cfg.NodeID), raft.ServerAddress(n.cfg.RaftAdvertise)),
	}
	n.guard = newVoteGuard(t, self,
		func() uint64 {
			if r := n.started.Load(); r != nil {
				return r.LastIndex()
			}
			return 0 // before Raft started, it has what it had: nothing
		},
		func(addr string) bool {
			n.askedMu.Lock()
			defer n.askedMu.Unlock()
			return n.asked[addr]
		},
		func() uint64 {
			if r := n.started.Load(); r != nil {
				return r.CurrentTerm()
			}
			return 0
		},
		func(candidate string, index, term uint64) {
			if ok, held := warned.allow(time.Now()); ok {
				n.logger.Warn("cluster: this node has no Raft state, and refuses its vote to a candidate whose log holds entries: "+
					"if this node lost its data directory while a member, it may have acknowledged entries the candidate lacks, "+
					"which the candidate would drop as leader; it votes once it holds the log up to the highest commit index a leader sent it, "+
					"or a leader added it as a new member "+
					"(a member that lost its data directory is removed first, pmd cluster remove "+n.cfg.NodeID+", then started empty)",
					"candidate", candidate, "candidate_last_index", index, "candidate_last_term", term, "suppressed", held)
			}
		})
	return n.guard
}

// votesRefused is how many vote and pre-vote requests the node's vote guard refused
// (voteGuard).
func (n *Node) votesRefused() uint64 {
	if n.guard == nil {
		return 0
	}
	return n.guard.refused.Load()
}

// noRaftState reports whether the node has no Raft log entry and no snapshot: it holds
// nothing of a cluster (a new node, or a member whose data directory was lost).
func noRaftState(logs *logStore, snaps raft.SnapshotStore) (bool, error) {
	last, err := logs.LastIndex()
	if err != nil {
		return false, fmt.Errorf("cluster: read the Raft log: %w", err)
	}
	metas, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("cluster: list the Raft snapshots: %w", err)
	}
	return last == 0 && len(metas) == 0, nil
}

// askedLeader records that the node at addr answered this node's join as the leader
// (tryJoin): the vote guard lets its vote requests through.
func (n *Node) askedLeader(addr string) {
	if n.guard == nil {
		return
	}
	n.askedMu.Lock()
	defer n.askedMu.Unlock()
	if n.asked == nil {
		n.asked = map[string]bool{}
	}
	n.asked[addr] = true
}

// addedAsNew records that the leader that answered this node's join added it to the
// configuration, which did not name it (tryJoin): a new member acknowledged nothing, and
// its vote guard goes off.
func (n *Node) addedAsNew(leader string) {
	if n.guard == nil {
		return
	}
	n.guard.added.Store(true)
	if n.guard.off.Load() {
		return // off already: it holds the log
	}
	n.guard.lift()
	n.logger.Info("cluster: added as a new member: this node acknowledged no entry before, and votes as Raft says from now on", "leader", leader)
}
