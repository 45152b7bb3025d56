package pmd_test

import (
	"context"
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

	r, err := engine.Verify(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != 4 || !r.OK() {
		t.Fatalf("verify: format %d, problems %q", r.Format, r.Problems)
	}
	noted := false
	for _, n := range r.Notes {
		noted = noted || strings.Contains(n, "data directory format 4: the next start raises it to format 5 once nothing refuses the open, "+
			"after which releases of pmd that wrote format 4 refuse to open it")
	}
	if !noted {
		t.Fatalf("verify's notes %q: none says the next start raises format 4 to 5", r.Notes)
	}
	plan, err := engine.PlanRepair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := plan.Close(); err != nil {
		t.Fatal(err)
	}
	checkFormat(t, dir, 4)

	s := open()
	const line = "upgraded the data directory from format 4 to format 5: releases of pmd that read data directory format 4 refuse it from now on"
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("the upgrade to format 5 is not logged as %q:\n%s", line, logs.String())
	}
	if strings.Contains(logs.String(), "rebuilding") {
		t.Fatalf("raising format 4 to 5 rebuilt the index:\n%s", logs.String())
	}
	checkFormat(t, dir, 5)
	checkFixture(t, s, want)
	res := mustAppend(t, s, "Order$1", pmd.Any, ev("AfterUpgrade"))
	s = reopenUpgraded(t, s, &logs, open)
	checkFormat(t, dir, 5)
	w := want
	w.Streams = map[string][]string{}
	for k, v := range want.Streams {
		w.Streams[k] = v
	}
	w.Streams["Order$1"] = append(append([]string(nil), want.Streams["Order$1"]...), res.IDs[0].String())
	w.All = append(append([]string(nil), want.All...), res.IDs[0].String())
	checkFixture(t, s, w)
}
