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
// refusal, until the node has state. Such a node may be a member that lost its data
// directory and was started again empty under its id and address, without its removal
// first (docs/cluster.md): Raft would grant the vote at once (it has no configuration to
// check the candidate against, no entry to compare), holding none of the entries it
// acknowledged, and a candidate without an acknowledged write could then lead with its
// vote and lose the write. Refusing a vote never costs safety, only an election: a
// leader that is up sends the node entries within a heartbeat, and from then on Raft
// answers everything. A new cluster's first election (--bootstrap-expect: the nodes that
// have not formed it yet vote for the one that has) is let through: its candidates hold
// only the bootstrap configuration, index 1, and nothing before it was acknowledged. So
// is a candidate that answered this node's join as the leader since the node started
// (tryJoin): a leader holds every committed entry, those this node acknowledged before
// it lost them included, and keeps them; and a leader adding this node to a cluster
// whose quorum needs it (a second node) that lost its leadership before the node got
// its first entry could be elected again only with its vote.
//
// The guard sits in front of Raft's consumer channel only: a node that starts with state
// gets the plain transport (Node.open), and its RPCs take no extra hop.
type voteGuard struct {
	guarded
	out   chan raft.RPC
	empty func() bool // the node still has no Raft state
	// asked reports whether the candidate at this Raft address answered this node's
	// join as the leader (Node.askedLeader).
	asked func(addr string) bool
	term  func() uint64
	self  raft.RPCHeader
	warn  func(candidate string, index, term uint64)

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

func newVoteGuard(t guarded, self raft.RPCHeader, empty func() bool, asked func(string) bool, term func() uint64, warn func(string, uint64, uint64)) *voteGuard {
	g := &voteGuard{guarded: t, out: make(chan raft.RPC), empty: empty, asked: asked, term: term, self: self, warn: warn, done: make(chan struct{})}
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
// request of a candidate past a bootstrap configuration while the node has no state.
func (g *voteGuard) refuse(rpc raft.RPC) bool {
	var (
		header      raft.RPCHeader
		index, term uint64
		resp        any
	)
	switch req := rpc.Command.(type) {
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
	if index <= bootstrapIndex || !g.empty() || g.asked(string(addr)) {
		return false
	}
	g.refused.Add(1)
	g.warn(fmt.Sprintf("%s at %s", header.ID, addr), index, term)
	rpc.Respond(resp, nil)
	return true
}

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
		func() bool {
			r := n.started.Load()
			return r == nil || r.LastIndex() == 0 // before Raft started, it has what it had: nothing
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
					"which the candidate would drop as leader; it votes once a leader sent it entries "+
					"(a member that lost its data directory is removed first, pmd cluster remove "+n.cfg.NodeID+", then started empty)",
					"candidate", candidate, "candidate_last_index", index, "candidate_last_term", term, "suppressed", held)
			}
		})
	return n.guard
}

// votesRefused is how many vote and pre-vote requests the node refused for want of Raft
// state (voteGuard).
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
