package cluster

import "fmt"

// LeaderKnown reports at once whether this node knows a leader that takes writes: nil
// when Raft names one (this node, once it is ready to lead, or another), otherwise why
// not (ErrNoLeader with Raft's state, the node's removal, rules it does not know). It
// neither waits nor asks the leader anything (LeaderHTTP may, once a term), so that a
// health check answers at once and a healthy follower is not taken for one without a
// leader while it has not yet asked a new term's leader its address.
func (n *Node) LeaderKnown() error {
	if n.removed.Load() {
		return ErrRemoved
	}
	if r := n.fsm.refused.Load(); r != nil {
		return r
	}
	_, id := n.raft.LeaderWithID()
	switch {
	case id == "":
		return fmt.Errorf("%w: %s", ErrNoLeader, n.raft.State())
	case string(id) == n.cfg.NodeID && !n.IsLeader():
		return fmt.Errorf("%w: this node was elected and is not yet ready to lead", ErrNoLeader)
	}
	return nil
}
