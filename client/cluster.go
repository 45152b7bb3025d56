package client

import (
	"context"
)

// ClusterStatus is what GET /v1/cluster says: the cluster as the node asked sees it.
type ClusterStatus struct {
	NodeID       string        `json:"node_id"`
	LeaderID     string        `json:"leader_id"` // "" while no leader is known
	CommitIndex  uint64        `json:"commit_index"`
	AppliedIndex uint64        `json:"applied_index"`
	Nodes        []ClusterNode `json:"nodes"`
}

// ClusterNode is one member of a cluster.
type ClusterNode struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	State    string `json:"state"` // leader, follower, candidate or unreachable
	// AppliedIndex is the last Raft index the node applied, nil if it did not answer;
	// Lag is how far it is behind the leader's commit index, known on the leader only.
	AppliedIndex *uint64 `json:"applied_index"`
	Lag          *uint64 `json:"lag"`
}

// Cluster asks the daemon how its cluster stands. A single node answers
// an error matching ErrNotFound.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	err := c.do(ctx, "GET", "/v1/cluster", nil, &st)
	return st, err
}

// JoinNode adds the node id, listening for Raft at raftAddr, to the cluster (admin). A
// join the cluster refuses as it stands fails with an error matching ErrConflict, saying
// why: the node's pmd applies older apply rules than the cluster's Raft log holds
// (upgrade its pmd first), the node does not answer at raftAddr as id (start it first),
// or it would replace the leader or a member that still answers at its old address.
func (c *Client) JoinNode(ctx context.Context, id, raftAddr string) error {
	return c.do(ctx, "POST", "/v1/cluster/nodes", map[string]string{"id": id, "raft_addr": raftAddr}, nil)
}

// RemoveNode removes the node id from the cluster (admin). An id that is no member is
// an error matching ErrNotFound; the cluster's last voter, one matching ErrConflict.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/cluster/nodes/"+segment(id), nil, nil)
}
