package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"
)

// ErrJoinRefused: a join the cluster refuses as it stands, whatever the wait: it would
// take the leader out, or replace a member that still answers at its address. The
// error says why and what to do.
var ErrJoinRefused = errors.New("cluster: join refused")

// replaceCheck refuses a join of id at addr that would take out old, a member of the
// configuration with the same id at another address, or another id at addr: not the
// leader (this node: the join's own configuration change could not be committed by a
// leader that removed itself, and it would leave the cluster without one), nor a node
// that still answers as id at its old address (two processes would then claim id, and
// the old one, told nothing, would go on serving a copy that no longer follows).
func (n *Node) replaceCheck(ctx context.Context, old raft.Server, id, addr string) error {
	if string(old.ID) == n.cfg.NodeID {
		return fmt.Errorf("%w: adding %s at %s would remove node %s at %s, the leader: stop the node that should go, or remove %s first (pmd cluster remove %s)",
			ErrJoinRefused, id, addr, old.ID, old.Address, old.ID, old.ID)
	}
	if string(old.ID) != id {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, _, _, err := n.call(cctx, string(old.Address), request{Op: "info"}, time.Second)
	if err == nil && resp.Info != nil && resp.Info.ID == id {
		return fmt.Errorf("%w: node %s is a member at %s, which still answers as %s: stop it, or remove it first (pmd cluster remove %s), before adding %s at %s",
			ErrJoinRefused, id, old.Address, id, id, id, addr)
	}
	return nil
}

// ErrUnknownNode: a removal of an id that is not a member of the configuration.
var ErrUnknownNode = errors.New("cluster: no such node")

// ErrRemoveRefused: a removal the cluster refuses as it stands: of its last voter, or
// one that leaves voters of which too few answer to make a quorum.
var ErrRemoveRefused = errors.New("cluster: removal refused")

// joinerWait bounds the leader's ask of a node it is to add: it answers at once.
const joinerWait = 2 * time.Second

// checkJoiner refuses to add id at addr unless the node there answers the cluster
// service's info as id (so with the cluster's secret, if there is one), with its Raft
// running: a voter that cannot answer (not started, another address or secret,
// "garbage"), or whose Raft stopped (removed, halted), counts in the quorum from the
// entry that adds it, so the cluster would stop on its next failure, with no leader
// left to remove it.
func (n *Node) checkJoiner(ctx context.Context, id, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, joinerWait)
	defer cancel()
	resp, _, _, err := n.call(cctx, addr, request{Op: "info"}, joinerWait)
	switch {
	case err != nil:
		return fmt.Errorf("%w: node %s does not answer at %s (%v): a voter that cannot answer would cost the cluster its quorum at the next failure; "+
			"start the node first (started with --join, it asks to be added itself), and check its Raft address and cluster secret", ErrJoinRefused, id, addr, err)
	case resp.Info == nil || resp.Info.ID != id:
		other := ""
		if resp.Info != nil {
			other = resp.Info.ID
		}
		return fmt.Errorf("%w: the node at %s is %q, not %s: check the id and the Raft address", ErrJoinRefused, addr, other, id)
	case raftStopped(resp.Info.State):
		// Its Raft stopped for the life of its process (removed, halted, stopping), which
		// still answers the cluster service: as a voter it would take no entry.
		return fmt.Errorf("%w: node %s is %s: its Raft is stopped, and a voter that takes no entries would cost the cluster its quorum at the next failure; "+
			"restart it (started with --join, it asks to be added itself; a halted node needs its pmd upgraded first)", ErrJoinRefused, id, resp.Info.State)
	}
	if ours := idString(n.fsm.cluster.get()); ours != "" && resp.Info.Cluster != "" && resp.Info.Cluster != ours {
		return fmt.Errorf("%w: node %s belongs to cluster %s, not to this cluster %s (clusters seeded from copies of one data directory share a store id, not a cluster id): "+
			"its records are the other cluster's; start it with an empty data directory to add it", ErrJoinRefused, id, resp.Info.Cluster, ours)
	}
	return nil
}

// idString is id in its canonical form, "" for uuid.Nil.
func idString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// removeCheck refuses the removal of id from servers when it is not among them, or is
// their last voter; else it returns id's Raft address.
func removeCheck(servers []raft.Server, id string) (raft.ServerAddress, error) {
	var addr raft.ServerAddress
	found, voter, voters := false, false, 0
	var ids []string
	for _, s := range servers {
		ids = append(ids, string(s.ID))
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			addr, found, voter = s.Address, true, s.Suffrage == raft.Voter
		}
	}
	if !found {
		return "", fmt.Errorf("%w: %s is not a member of the cluster (its members: %s)", ErrUnknownNode, id, strings.Join(ids, ", "))
	}
	if voter && voters == 1 {
		return "", fmt.Errorf("%w: %s is the cluster's last voter, and a cluster needs one: stop it instead "+
			"(a one-node cluster's node that lost records is not removed, as no other member holds them: restore its data directory from a backup, "+
			"or serve the records it holds as a single node's with pmd serve --leave-cluster and no --node-id; docs/cluster.md)", ErrRemoveRefused, id)
	}
	return addr, nil
}

// removeQuorum refuses the removal of voter id from servers when the voters left
// without it hold no quorum among those that answer (answers: the voters that answered
// the cluster service as members, this node included). Raft commits the removal with
// the configuration without id: with a member down, the leader would append it, fail
// to commit it with the members left, step down and leave the cluster without a leader
// (every write 503) until the member that was down is back. A nonvoter's removal
// changes no quorum.
func removeQuorum(servers []raft.Server, id string, answers map[raft.ServerID]bool) error {
	var left, silent []string
	up, voter := 0, false
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		if string(s.ID) == id {
			voter = true
			continue
		}
		left = append(left, string(s.ID))
		if answers[s.ID] {
			up++
		} else {
			silent = append(silent, string(s.ID))
		}
	}
	if !voter || up > len(left)/2 {
		return nil // id is no voter, or a quorum of what is left answers
	}
	return fmt.Errorf("%w: without %s the cluster's voters are %s, and %s of them did not answer (down, or cut off): "+
		"a quorum of them is %d, so the removal could not commit and the cluster would lose its leader until they are back; "+
		"start %s again (or wait until it answers), then remove %s",
		ErrRemoveRefused, id, strings.Join(left, ", "), strings.Join(silent, ", "), len(left)/2+1, strings.Join(silent, " and "), id)
}

// answering asks every voter of servers but this node whether it is up as a member
// (the status route's "info", within a second): those that answer with a running Raft,
// and this node.
func (n *Node) answering(ctx context.Context, servers []raft.Server) map[raft.ServerID]bool {
	answers := map[raft.ServerID]bool{raft.ServerID(n.cfg.NodeID): true}
	var mu sync.Mutex
	n.askVoters(ctx, servers, func(s raft.Server, info *Info) {
		if raftStopped(info.State) {
			return // it takes no entry
		}
		mu.Lock()
		answers[s.ID] = true
		mu.Unlock()
	})
	return answers
}

// raftStopped reports whether a node's info state says its Raft stopped for the life of
// its process (removed, halted, stopping), which still answers the cluster service.
func raftStopped(state string) bool {
	switch state {
	case "removed", "halted", "shutdown":
		return true
	}
	return false
}
