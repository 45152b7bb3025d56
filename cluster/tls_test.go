package cluster_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/testcert"
)

// TestClusterForwardsOverTLS runs three nodes serving HTTPS with a certificate no system
// root vouches for, each told to trust it with --tls-ca: a write through a follower
// reaches the leader, and every node then holds it.
func TestClusterForwardsOverTLS(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t, t.TempDir(), "pmd cluster")
	c := newNodes(t, 3, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", certFile)
	c.tls = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for i := range c.nodes {
		c.start(i)
	}
	lead := c.leader()
	follower := (lead + 1) % len(c.nodes)
	id := uuid.NewString()
	st, body, err := c.append(follower, "Order$1", "no_stream", id)
	if err != nil || st != http.StatusCreated {
		t.Fatalf("append through follower %s: %d %v %v", c.nodes[follower].id, st, body, err)
	}
	for i := range c.nodes {
		c.waitFor(10*time.Second, c.nodes[i].id+" holding the write", func() error {
			ids, err := c.all(i, false)
			if err == nil && !strings.Contains(strings.Join(ids, ","), id) {
				return fmt.Errorf("not among its %d events", len(ids))
			}
			return err
		})
	}
}
