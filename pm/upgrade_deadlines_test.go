package pm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// remindOrder is the state of the process manager of testdata/deadlines0 and
// deadlines1, as their makers (mkfixture/mkfixture_test.go, run in package pm_test)
// declared it: a snapshot's fingerprint names the state type's package and name, and
// with another one this version would refuse the fixtures' snapshots and fold from the
// stream.
type remindOrder struct {
	Placed time.Time
	Remind int
	Paid   bool
	Items  int
}

// ordersDef is the definition testdata/deadlines0 and deadlines1's makers ran.
func ordersDef() pm.Definition[remindOrder] {
	return pm.Definition[remindOrder]{
		Name:      "Orders",
		Handles:   []string{"Placed", "Paid", "Item"},
		ProcessID: pm.DataField("order"),
		Init:      func(string) remindOrder { return remindOrder{} },
		Apply: func(o remindOrder, e pmd.Event) remindOrder {
			switch e.Type {
			case "Placed":
				o.Placed = e.Timestamp
				o.Remind, _ = strconv.Atoi(fmt.Sprint(e.Data["remind"]))
			case "Paid":
				o.Paid = true
			case "Item":
				o.Items++
			}
			return o
		},
		Decide: func(o remindOrder) []pm.Command {
			switch {
			case o.Paid:
				return []pm.Command{{Type: "Ship", Data: map[string]any{"items": o.Items}}}
			case !o.Placed.IsZero():
				return []pm.Command{{Type: "Remind", At: o.Placed.Add(time.Duration(o.Remind) * time.Minute)}}
			}
			return nil
		},
	}
}

// sent collects what a handler was given, by "<process id> <type>" and id.
type sent struct {
	mu  sync.Mutex
	ids []string
}

func (s *sent) add(c pm.Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, c.ProcessID+" "+c.Type+" "+c.ID.String())
}

func (s *sent) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.ids
	s.ids = nil
	return out
}

// TestUpgradeKeepsDeadlinesParkedAndSnapshots opens a store whose process manager and
// subscription were run by pmd at 1bf8b17, before 8b405c2 gave the runtime's records
// ids of their own (testdata/deadlines1), and one run by pmd at eb5a890, whose snapshots
// also predate cc8e14d's "own" field (testdata/deadlines0): its pending deadlines fire once, when due;
// the deadline it issued and the commands it delivered are not issued again; its parked
// command stays parked until Retry, then goes out under its old id; the process with
// snapshots folds from the fixture's newest snapshot to the same state and decides on
// it; the delivery records say what the fixture delivered; the subscription keeps its
// parked event and its position; a restart delivers nothing again; and pmd verify
// finds the store clean.
func TestUpgradeKeepsDeadlinesParkedAndSnapshots(t *testing.T) {
	for _, fixture := range []string{"deadlines0", "deadlines1"} {
		t.Run(fixture, func(t *testing.T) { upgradeKeepsDeadlinesParkedAndSnapshots(t, fixture) })
	}
}

func upgradeKeepsDeadlinesParkedAndSnapshots(t *testing.T, fixture string) {
	ctx := context.Background()
	var want struct {
		Clock     time.Time         `json:"clock"`
		Issued    map[string]string `json:"issued"`
		Delivered []string          `json:"delivered"`
		Audit     []string          `json:"audit"`
		Parked    string            `json:"parked"`
	}
	b, err := os.ReadFile(filepath.Join("testdata", fixture, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", fixture, "store"))); err != nil {
		t.Fatal(err)
	}
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	snapshots := processStream(t, s, "Orders.snapshots$5")
	if len(snapshots) == 0 {
		t.Fatal("the fixture's order 5 has no snapshots")
	}
	for _, sn := range snapshots {
		if _, own := sn.Data["own"]; own != (fixture == "deadlines1") {
			t.Fatalf("the fixture's snapshot %s has own %v: %v", sn.ID, own, sn.Data)
		}
	}
	newest := snapshots[len(snapshots)-1]

	clock := pmtest.NewClock(want.Clock)
	var shipped sent
	var audited collected
	run := func() (*running, *runningSub) {
		t.Helper()
		m := start(t, s, ordersDef(), pm.Options{Clock: clock, SnapshotEvery: 3, MaxAttempts: 2,
			RetryMin: time.Millisecond, RetryMax: time.Millisecond,
			Deliver: func(_ context.Context, c pm.Command) error { shipped.add(c); return nil }})
		a := startSub(t, s, "Audit", pm.Filter{Category: "Order"}, pm.SubscriptionOptions{Clock: clock, Logger: quiet(), MaxAttempts: 1,
			Deliver: func(_ context.Context, e pmd.Event) error { audited.add(e.ID); return nil }})
		m.idle(t)
		a.idle(t)
		return m, a
	}
	cmd := func(pid, typ string) string { return pid + " " + typ + " " + want.Issued[pid+" "+typ] }
	m, audit := run()

	// Nothing is due, order 3's Ship is parked, and Audit is held by its parked event.
	if got := shipped.take(); len(got) != 0 {
		t.Errorf("delivered %v at the upgrade, want nothing", got)
	}
	parked, total, err := parkedList(ctx, m.Manager, 10)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(parked) != 1 || parked[0].Command.ID.String() != want.Issued["3 Ship"] {
		t.Errorf("parked %+v (total %d), want order 3's Ship %s", parked, total, want.Issued["3 Ship"])
	}
	st := audit.status(t)
	if len(st.Parked) != 1 || st.Parked[0].Event.ID.String() != want.Parked {
		t.Errorf("Audit's parked events %+v, want %s", st.Parked, want.Parked)
	}
	if got := audited.get(); len(got) != 0 {
		t.Errorf("Audit delivered %v at the upgrade, want nothing", got)
	}
	var delivered []string
	for pid, w := range map[string]struct {
		commands  []string
		deadlines int
	}{
		"1": {[]string{want.Issued["1 Ship"]}, 0},
		"2": {[]string{want.Issued["2 Ship"]}, 0},
		"3": {[]string{want.Issued["3 Ship"]}, 0},
		"4": {nil, 1},
		"5": {nil, 1},
		"6": {[]string{want.Issued["6 Remind"]}, 0},
	} {
		p, err := m.Process(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range p.Commands {
			ids = append(ids, c.ID.String())
		}
		for _, d := range p.Deliveries {
			if d.Outcome == pm.OutcomeDelivered {
				delivered = append(delivered, d.CommandID.String())
			}
		}
		if !slices.Equal(ids, w.commands) || len(p.Deadlines) != w.deadlines {
			t.Errorf("process %s: commands %v, deadlines %+v; want %v and %d deadline(s)", pid, ids, p.Deadlines, w.commands, w.deadlines)
		}
	}
	slices.Sort(delivered)
	if w := slices.Sorted(slices.Values(want.Delivered)); !slices.Equal(delivered, w) {
		t.Errorf("the fixture's delivery records say %v were delivered, want %v", delivered, w)
	}
	// Order 5 folds from the fixture's newest snapshot (Process replays the whole stream,
	// ProcessPage starts from the snapshot it trusts): its fingerprint is this
	// definition's, and its ledger, with or without own, is taken.
	p5, err := m.ProcessPage(ctx, "5", -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p5.Snapshot == nil || p5.Snapshot.ID != newest.ID {
		t.Fatalf("process 5 folded from snapshot %+v, want the fixture's newest, %s (%s version %d)",
			p5.Snapshot, newest.ID, newest.Stream, newest.Version)
	}
	if p5.State.(remindOrder).Items != 10 {
		t.Fatalf("process 5 (folded from snapshot %s): state %+v; want 10 items", newest.ID, p5.State)
	}

	// Order 5 is paid: it ships its 10 items, and its reminder is dropped. A day later
	// order 4's reminder fires, once.
	if _, err := s.Append(ctx, "Order$5", pmd.Any, pmd.EventData{ID: uuid.New(), Type: "Paid", Data: map[string]any{"order": "5"}}); err != nil {
		t.Fatal(err)
	}
	m.idle(t)
	clock.Advance(48 * time.Hour)
	m.idle(t)
	p5, err = m.Process(ctx, "5")
	if err != nil {
		t.Fatal(err)
	}
	p4, err := m.Process(ctx, "4")
	if err != nil {
		t.Fatal(err)
	}
	if len(p5.Commands) != 1 || fmt.Sprint(p5.Commands[0].Data["items"]) != "10" || len(p4.Commands) != 1 {
		t.Fatalf("order 5 issued %+v, order 4 %+v; want a Ship of 10 items and a Remind", p5.Commands, p4.Commands)
	}
	got := shipped.take()
	slices.Sort(got)
	if w := []string{"4 Remind " + p4.Commands[0].ID.String(), "5 Ship " + p5.Commands[0].ID.String()}; !slices.Equal(got, w) {
		t.Errorf("delivered %v after the upgrade, want %v", got, w)
	}

	// The parked command and event go out when retried, under their ids.
	if err := m.Retry(ctx, "3", parked[0].Command.ID); err != nil {
		t.Fatal(err)
	}
	parkedID, err := uuid.Parse(want.Parked)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Retry(ctx, parkedID); err != nil {
		t.Fatal(err)
	}
	m.idle(t)
	audit.idle(t)
	if got := shipped.take(); !slices.Equal(got, []string{cmd("3", "Ship")}) {
		t.Errorf("the retried command delivered %v, want %s", got, cmd("3", "Ship"))
	}
	var rest []string
	for e, err := range s.ReadCategory(ctx, "Order", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(want.Audit, e.ID.String()) {
			rest = append(rest, e.ID.String())
		}
	}
	if got := audited.get(); !slices.Equal(got, rest) || rest[0] != want.Parked {
		t.Errorf("Audit delivered %v after the retry, want the parked event and those after it, %v", got, rest)
	}

	// A restart issues and delivers nothing again.
	m.stop(t)
	audit.stop(t)
	n := len(audited.get())
	m, audit = run()
	if got := shipped.take(); len(got) != 0 {
		t.Errorf("delivered %v after a restart, want nothing", got)
	}
	if got := audited.get(); len(got) != n {
		t.Errorf("Audit delivered %v after a restart, want nothing new", got[n:])
	}
	m.stop(t)
	audit.stop(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Verify(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Errorf("pmd verify after the upgrade: %v", r.Problems)
	}
}
