package pmd_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// TestOpensFormat4: a data directory written by a release of format 4 (testdata/format4,
// its log past the index's durable point as after a crash) is raised to format 5 at its
// first open, once nothing refuses it, with nothing else to upgrade (no index rebuilt),
// logged as refusing the releases that read format 4 (they read a commit record with a
// slot as damage, and cut it at the log's tail with everything after it); the store
// reads what that release read, and a second open upgrades nothing. pmd verify and the
// plan of pmd repair read format 4, note the upgrade and leave FORMAT as it is.
func TestOpensFormat4(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "format4", &logs)
	checkFormat(t, dir, 4)

	checkRaised(t, dir, 4, "releases of pmd that wrote format 4", "releases of pmd that read data directory format 4", &logs, want, open)
}

// checkRaised checks what a data directory of format from, at dir, goes through to this
// release's format 5: pmd verify reads it, noting the raise and that releases (wrote)
// refuse it after; the plan of pmd repair leaves its FORMAT; the first open raises it,
// logging that releases (read) refuse it from now on, without rebuilding the index, and
// reads want; an append after it is read after a second open, which upgrades nothing.
func checkRaised(t *testing.T, dir string, from int, wrote, read string, logs *lockedBuffer, want fixtureWant, open func() *pmd.Store) {
	t.Helper()
	r, err := engine.Verify(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != from || !r.OK() {
		t.Fatalf("verify: format %d, problems %q", r.Format, r.Problems)
	}
	note := fmt.Sprintf("data directory format %d: the next start raises it to format 5 once nothing refuses the open, after which %s refuse to open it", from, wrote)
	noted := false
	for _, n := range r.Notes {
		noted = noted || strings.Contains(n, note)
	}
	if !noted {
		t.Fatalf("verify's notes %q: none says %q", r.Notes, note)
	}
	plan, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Close(); err != nil {
		t.Fatal(err)
	}
	checkFormat(t, dir, from)

	s := open()
	line := fmt.Sprintf("upgraded the data directory from format %d to format 5: %s refuse it from now on", from, read)
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("the upgrade to format 5 is not logged as %q:\n%s", line, logs.String())
	}
	if strings.Contains(logs.String(), "rebuilding") {
		t.Fatalf("raising format %d to 5 rebuilt the index:\n%s", from, logs.String())
	}
	checkFormat(t, dir, 5)
	checkFixture(t, s, want)
	res := mustAppend(t, s, "Order$1", pmd.Any, ev("AfterUpgrade"))
	s = reopenUpgraded(t, s, logs, open)
	checkFormat(t, dir, 5)
	w := want
	w.Streams = maps.Clone(want.Streams)
	w.Streams["Order$1"] = append(slices.Clone(want.Streams["Order$1"]), res.IDs[0].String())
	w.All = append(slices.Clone(want.All), res.IDs[0].String())
	checkFixture(t, s, w)
}
