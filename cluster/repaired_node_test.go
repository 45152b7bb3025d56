package cluster_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestClusterRepairedNodeCatchesUp: a stopped member whose store is damaged where a
// start refuses it (the last record of a segment synced whole, an empty one after it:
// whether its write was committed cannot be told) is repaired with pmd repair --yes,
// which cuts the damaged write (Raft writes it again: it is past the node's snapshot),
// and started again: it catches up, and every member holds the same $all, the damaged
// write's event at its position too.
func TestClusterRepairedNodeCatchesUp(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	c.appendMany(t, lead, "Repair", 20)
	want := c.converged(30 * time.Second)
	x := (lead + 1) % 3
	c.stop(x)

	// The node's log ends at a segment synced whole (an empty segment after it, as a
	// rollover leaves it), its last record damaged.
	dir := filepath.Join(c.nodes[x].dir, "log")
	l, err := pmdlog.Open(dir, pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	last, segs := l.LastPosition(), l.Segments()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tail := segs[len(segs)-1]
	if tail.Count == 0 {
		t.Fatalf("the log of %s ends with an empty segment already: %+v", c.nodes[x].id, segs)
	}
	b, err := os.ReadFile(tail.Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff // in the last record: its length prefix, and so the framing, holds
	if err := os.WriteFile(tail.Path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d", last+1)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	c.start(x)
	select {
	case <-c.nodes[x].waited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s started on its damaged store", c.nodes[x].id)
	}
	c.kill(x) // gone already: forgets the run
	c.nodes[x].logMu.Lock()
	refused := strings.Contains(c.nodes[x].log.String(), "whether its write was committed cannot be told")
	c.nodes[x].logMu.Unlock()
	if !refused {
		t.Fatalf("%s stopped, but not refusing its damaged last record", c.nodes[x].id)
	}

	out, err := exec.Command(pmdBin, "repair", "--yes", c.nodes[x].dir).CombinedOutput()
	if err != nil {
		t.Fatalf("pmd repair --yes: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("from position %d", last)) {
		t.Fatalf("pmd repair --yes does not say it cut position %d:\n%s", last, out)
	}
	c.start(x)
	if !c.alive(x) {
		t.Fatalf("%s did not start after its repair", c.nodes[x].id)
	}
	if got := c.converged(60 * time.Second); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the repair the members hold $all %v, before it %v", got, want)
	}
	// It takes writes, and holds them as the others do.
	if st, body, err := c.append(x, "Repair$after", "any", ""); err != nil || st != 201 {
		t.Fatalf("append through the repaired node: %d %v %v", st, body, err)
	}
	if got := c.converged(30 * time.Second); len(got) != len(want)+1 {
		t.Fatalf("$all holds %d events, want %d", len(got), len(want)+1)
	}
}
