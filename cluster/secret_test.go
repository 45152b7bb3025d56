package cluster_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterSecret: three nodes with the same --cluster-secret-file form a cluster and
// replicate; a fourth with another secret, and then with none, is refused (each side
// says why in its log, and the members count the refusals); with the cluster's secret it
// joins.
func TestClusterSecret(t *testing.T) {
	dir := t.TempDir()
	secretFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	right := secretFile("right", "9f86d081884c7d659a2feaa0c55ad015\n")
	wrong := secretFile("wrong", "60303ae22b998861bce3b28f33eec1be\n")

	c := startSecretCluster(t, right)
	lead := c.leader()
	for i := range 3 {
		if st, body, err := c.append(i, fmt.Sprintf("Order$%d", i), "no_stream", ""); err != nil || st != http.StatusCreated {
			t.Fatalf("append through %s: %d %v %v", c.nodes[i].id, st, body, err)
		}
	}
	members3 := func() error {
		v, err := c.view(lead)
		if err != nil || len(v.Nodes) != 3 {
			return fmt.Errorf("the leader sees %+v (%v), want the three members", v, err)
		}
		return nil
	}

	n4 := c.nodes[3]
	for _, tt := range []struct {
		name  string
		flags []string
		says  string // in n4's log
	}{
		{"another secret", []string{"--cluster-secret-file", wrong}, "does not know this node's cluster secret"},
		{"no secret", nil, "needs the cluster secret"},
	} {
		refused := c.refused(t)
		n4.flags = tt.flags
		c.start(3)
		c.waitFor(30*time.Second, "n4 with "+tt.name+" says it was refused", func() error {
			n4.logMu.Lock()
			defer n4.logMu.Unlock()
			if !strings.Contains(n4.log.String(), tt.says) {
				return fmt.Errorf("its log lacks %q", tt.says)
			}
			return nil
		})
		c.waitFor(30*time.Second, "the members count n4's connections refused", func() error {
			if now := c.refused(t); now <= refused {
				return fmt.Errorf("pmd_raft_refused_connections_total %d, before n4 started %d", now, refused)
			}
			return nil
		})
		if err := members3(); err != nil {
			t.Fatalf("n4 with %s: %v", tt.name, err)
		}
		c.kill(3)
	}

	n4.flags = []string{"--cluster-secret-file", right}
	c.start(3)
	c.waitFor(30*time.Second, "n4 with the cluster's secret a member", func() error {
		v, err := c.view(lead)
		if err != nil || len(v.Nodes) != 4 {
			return fmt.Errorf("the leader sees %+v (%v)", v, err)
		}
		return nil
	})
	if all := c.converged(30 * time.Second); len(all) != 3 {
		t.Fatalf("$all holds %d events, want 3", len(all))
	}
}

// refused sums pmd_raft_refused_connections_total over the live members n1 to n3.
func (c *tcluster) refused(t *testing.T) uint64 {
	t.Helper()
	var sum uint64
	for i := range 3 {
		if !c.alive(i) {
			continue
		}
		m, err := c.metrics(i)
		if err != nil {
			t.Fatal(err)
		}
		_, v, ok := strings.Cut(m, "\npmd_raft_refused_connections_total ")
		if !ok {
			t.Fatalf("%s's /metrics lack pmd_raft_refused_connections_total", c.nodes[i].id)
		}
		v, _, _ = strings.Cut(v, "\n")
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += uint64(n)
	}
	return sum
}

// startSecretCluster starts three nodes that form a cluster with the secret file, and
// sets up a fourth, not started, to join it with the same file.
func startSecretCluster(t *testing.T, file string) *tcluster {
	t.Helper()
	c := newNodes(t, 4)
	members := strings.Join([]string{c.nodes[0].proxy.addr(), c.nodes[1].proxy.addr(), c.nodes[2].proxy.addr()}, ",")
	for i, nd := range c.nodes {
		nd.join, nd.expect, nd.flags = members, 3, []string{"--cluster-secret-file", file}
		if i == 3 {
			nd.expect = 0
		}
	}
	for i := range 3 {
		c.start(i)
	}
	return c
}

// TestClusterSecretRotation rotates a running cluster's secret from A to B with three
// SIGHUPs, no restart (docs/cluster.md, "Security"): the file "A, B", then "B, A", then
// "B". Writes go on throughout, and a node that knows only B then joins and catches up.
func TestClusterSecretRotation(t *testing.T) {
	const a, b = "9f86d081884c7d659a2feaa0c55ad015", "60303ae22b998861bce3b28f33eec1be"
	file := filepath.Join(t.TempDir(), "cluster.secret")
	write := func(secrets ...string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	c := startSecretCluster(t, file)
	c.leader()
	for round, secrets := range [][]string{{a, b}, {b, a}, {b}} {
		write(secrets...)
		for i := range 3 {
			nd := c.nodes[i]
			if err := nd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			c.waitFor(20*time.Second, fmt.Sprintf("%s reloads its secrets (round %d)", nd.id, round+1), func() error {
				nd.logMu.Lock()
				defer nd.logMu.Unlock()
				if n := strings.Count(nd.log.String(), "cluster secrets reloaded"); n <= round {
					return fmt.Errorf("reloaded %d times", n)
				}
				return nil
			})
		}
		if st, body, err := c.append(round, fmt.Sprintf("Order$%d", round), "no_stream", ""); err != nil || st != http.StatusCreated {
			t.Fatalf("append after round %d: %d %v %v", round+1, st, body, err)
		}
	}
	// n4 knows only B: it joins only if the members prove B and take it.
	c.start(3)
	lead := c.leader()
	c.waitFor(30*time.Second, "n4 a member", func() error {
		v, err := c.view(lead)
		if err != nil || len(v.Nodes) != 4 {
			return fmt.Errorf("the leader sees %+v (%v)", v, err)
		}
		return nil
	})
	if all := c.converged(30 * time.Second); len(all) != 3 {
		t.Fatalf("$all holds %d events, want 3", len(all))
	}
}
