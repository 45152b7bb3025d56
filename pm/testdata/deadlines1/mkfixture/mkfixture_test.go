package pm_test

// This file is the fixture maker of testdata/deadlines1, for pmd at commit 1bf8b17 (see
// testdata/deadlines1/README.md): copied into that version's pm directory, it writes,
// with PMD_MKFIXTURE set to a directory, that directory's store/ and want.json. It is a
// test of package pm_test with a state type named remindOrder so that its snapshots'
// fingerprint (the state type's package path and name among the rest) is the one of
// TestUpgradeKeepsDeadlinesParkedAndSnapshots's definition: a snapshot made by another
// fold is not trusted, and the test's process would be folded from its stream.
//
// Version 1bf8b17 is the last before 8b405c2 (which made a process manager's and its
// deliveries' records count only by ids the runtime makes, with a legacy mark for those
// written before): its process records, delivery records and snapshots have the ids of
// that version.
//
// The process manager Orders (handles Placed, Paid, Item) decides, for a placed order,
// a deadline Remind at the order's "remind" minutes after it was placed, until it is
// paid, and Ship once it is paid. Orders 1 and 2 are shipped (delivered); order 3's
// Ship is refused by the receiver until it is parked; order 4 is placed with a
// reminder a day away (pending); order 5 is placed with a reminder a day away and gets
// 10 items, so its stream holds snapshots (SnapshotEvery 3); order 6's reminder, a
// minute away, is issued and delivered as the clock passes it. The subscription Audit
// (category Order) delivers every event but order 3's Placed, which it parks
// (MaxAttempts 1). Every runner stops cleanly and the store is closed. want.json holds
// the manager's clock at the end and the command ids issued and delivered.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// remindOrder is the state of Orders; its name, package and fields are those of
// TestUpgradeKeepsDeadlinesParkedAndSnapshots's.
type remindOrder struct {
	Placed time.Time
	Remind int
	Paid   bool
	Items  int
}

func TestMakeDeadlinesFixture(t *testing.T) {
	out := os.Getenv("PMD_MKFIXTURE")
	if out == "" {
		t.Skip("PMD_MKFIXTURE (the directory to write store/ and want.json in) is not set")
	}
	def := pm.Definition[remindOrder]{
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
	var w struct {
		Clock     time.Time         `json:"clock"`
		Issued    map[string]string `json:"issued"` // "<order> <type>" -> command id
		Delivered []string          `json:"delivered"`
		Audit     []string          `json:"audit"`  // event ids delivered
		Parked    string            `json:"parked"` // Audit's parked event id
	}
	w.Issued = map[string]string{}
	var mu sync.Mutex
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := pmd.Open(filepath.Join(out, "store"), pmd.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	clock := pmtest.NewClock(time.Now().UTC().Truncate(time.Second))
	m, err := pm.New(s, def, pm.Options{Logger: quiet, Clock: clock, CheckpointEvery: 1,
		SnapshotEvery: 3, MaxAttempts: 2, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Deliver: func(_ context.Context, c pm.Command) error {
			mu.Lock()
			defer mu.Unlock()
			w.Issued[c.ProcessID+" "+c.Type] = c.ID.String()
			if c.ProcessID == "3" {
				return errors.New("receiver refused it")
			}
			w.Delivered = append(w.Delivered, c.ID.String())
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := pm.NewSubscription(s, "Audit", pm.Filter{Category: "Order"}, pm.SubscriptionOptions{
		Logger: quiet, SaveEvery: time.Millisecond, MaxAttempts: 1,
		Deliver: func(_ context.Context, e pmd.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if e.Type == "Placed" && e.Data["order"] == "3" {
				w.Parked = e.ID.String()
				return errors.New("receiver refused it")
			}
			w.Audit = append(w.Audit, e.ID.String())
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- m.Run(run) }()
	go func() { done <- audit.Run(run) }()

	add := func(n int, typ string, i int, data map[string]any) {
		data["order"] = strconv.Itoa(n)
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s %d %d", typ, n, i))
		if _, err := s.Append(ctx, "Order$"+strconv.Itoa(n), pmd.Any, pmd.EventData{ID: id, Type: typ, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 6; n++ {
		remind := 24 * 60
		if n == 6 {
			remind = 1
		}
		add(n, "Placed", 0, map[string]any{"remind": remind})
	}
	for n := 1; n <= 3; n++ {
		add(n, "Paid", 0, map[string]any{})
	}
	for i := range 10 {
		add(5, "Item", i, map[string]any{})
	}
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute) // order 6's reminder
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := audit.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	// Order 3's Ship is parked after MaxAttempts; this version has no wait for it, so
	// poll (a fixture maker, run once by hand).
	for {
		_, total, err := m.Parked(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if total == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Clock = clock.Now()
	stop()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "want.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
