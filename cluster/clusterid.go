package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/engine"
)

// clusterIDFile, in a node's Raft directory, holds the id of the cluster the node belongs
// to: one line, a UUID. The first leader of a cluster makes it and puts it in the seed
// entry; a node records it when it applies the seed entry or installs a snapshot that
// carries it. The store id cannot tell clusters apart: two clusters seeded from copies of
// one single node's data directory share it. A node of a release before cluster ids, or
// of a cluster seeded by one, has none: nothing is compared then.
const clusterIDFile = "CLUSTER_ID"

// clusterID is a node's recorded cluster id.
type clusterID struct {
	path string // "" in tests that give none: kept in memory only
	mu   sync.Mutex
	id   uuid.UUID // uuid.Nil while unknown
}

// loadClusterID reads the cluster id recorded at path, if any.
func loadClusterID(path string) (*clusterID, error) {
	c := &clusterID{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("cluster: read the cluster id: %w", err)
	}
	if c.id, err = uuid.Parse(strings.TrimSpace(string(b))); err != nil {
		return nil, fmt.Errorf("cluster: %s does not hold a cluster id: %w", path, err)
	}
	return c, nil
}

// otherCluster says that this node, of cluster ours, is asked to take the state of
// cluster theirs.
func otherCluster(ours, theirs uuid.UUID) string {
	return fmt.Sprintf("this node belongs to cluster %s, not to cluster %s (two clusters seeded from copies of one data directory share a store id, not a cluster id): "+
		"to make it a member of %s, remove it from that cluster first (pmd cluster remove and its node id, on a member of %s), then start it with an empty data directory and --join", ours, theirs, theirs, theirs)
}

// get returns the recorded id, uuid.Nil if none (or c is nil: an fsm of a test).
func (c *clusterID) get() uuid.UUID {
	if c == nil {
		return uuid.Nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// adopt records id as the node's cluster id if it has none (id Nil records nothing),
// and refuses an id other than the one recorded: the node belongs to another cluster.
func (c *clusterID) adopt(id uuid.UUID) error {
	if c == nil || id == uuid.Nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.id {
	case id:
		return nil
	case uuid.Nil:
	default:
		return &foreignError{otherCluster(c.id, id)}
	}
	return c.saveLocked(id)
}

// replace records id as the node's cluster id in place of any recorded (id Nil records
// nothing): a seed entry's or snapshot's while the store holds no write (fsm.seed).
func (c *clusterID) replace(id uuid.UUID) error {
	if c == nil || id == uuid.Nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == id {
		return nil
	}
	return c.saveLocked(id)
}

func (c *clusterID) saveLocked(id uuid.UUID) error {
	if c.path != "" {
		if err := engine.ReplaceFile(c.path, []byte(id.String()+"\n"), true); err != nil {
			return fmt.Errorf("save the cluster id: %w", err)
		}
	}
	c.id = id
	return nil
}
