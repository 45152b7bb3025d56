package cluster_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/powercut"
)

// TestClusterPowerCut cuts the power under the whole cluster while writes go on through
// every node: each node's files lose what was not fsynced (internal/powercut), which
// SIGKILL never shows. A node's store does not fsync under Raft (docs/cluster.md, "No
// store fsync under Raft"); only its Raft log does, before a write is acknowledged. So
// after every cut and restart, every acknowledged write must be in $all once, on every
// node. The last round cuts the leader only, which then catches up with the others.
func TestClusterPowerCut(t *testing.T) {
	c := newNodes(t, 3)
	disks, _ := mountPowerCut(t, c)
	for i := range c.nodes {
		c.start(i)
	}

	var mu sync.Mutex
	acked := map[string]bool{}
	for round := range 3 {
		cut := []int{0, 1, 2}
		if lead := c.leader(); round == 2 {
			cut = []int{lead}
		}
		// Writers through every node until enough are acknowledged, then the cut, with
		// writes in flight.
		stop := make(chan struct{})
		enough := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		n := 0
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := uuid.NewString()
					st, _, err := c.append(w%3, fmt.Sprintf("Cut$%d", w), "any", id)
					if err != nil || st != http.StatusCreated {
						continue // not acknowledged: it may or may not be there
					}
					mu.Lock()
					acked[id] = true
					n++
					if n >= 300 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}()
		}
		select {
		case <-enough:
		case <-time.After(2 * time.Minute):
			close(stop)
			wg.Wait()
			t.Fatalf("round %d: only %d writes acknowledged in 2 minutes", round, n)
		}
		for _, i := range cut {
			c.kill(i)
		}
		close(stop)
		wg.Wait()
		for _, i := range cut {
			if err := disks[i].Cut(); err != nil {
				t.Fatalf("round %d: cut %s: %v", round, c.nodes[i].id, err)
			}
		}
		for _, i := range cut {
			c.start(i)
		}
		c.leader()
		all := c.converged(time.Minute)
		got := map[string]int{}
		for _, e := range all {
			got[e[strings.IndexByte(e, ':')+1:]]++
		}
		mu.Lock()
		for id := range acked {
			if got[id] != 1 {
				t.Fatalf("round %d: acknowledged event %s is in $all %d times after the cut", round, id, got[id])
			}
		}
		t.Logf("round %d: power cut under %d nodes; %d acknowledged writes, all there; $all holds %d", round, len(cut), len(acked), len(all))
		mu.Unlock()
	}
}

// mountPowerCut puts each node's data directory of c on a power-cut disk
// (internal/powercut) backed by a directory of its own, returned with the disks, or
// skips the test where FUSE mounts are refused. The nodes are killed, then the disks
// unmounted, at the test's end, before newNodes' cleanup.
func mountPowerCut(t *testing.T, c *tcluster) (disks []*powercut.Disk, backing []string) {
	t.Helper()
	disks = make([]*powercut.Disk, len(c.nodes))
	backing = make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		backing[i] = t.TempDir()
		d, err := powercut.Mount(backing[i], nd.dir)
		if err != nil {
			for _, d := range disks[:i] {
				d.Unmount()
			}
			t.Skipf("no power cuts here: %v", err)
		}
		disks[i] = d
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		for _, d := range disks {
			if err := d.Unmount(); err != nil {
				t.Error(err)
			}
		}
	})
	return disks, backing
}
