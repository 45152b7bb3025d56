// mkfixture writes a data directory with the pmd of commit eb5a890, the last version
// before cc8e14d (which added a snapshot's "own" field) and so before 8b405c2 (which
// made a process manager's and its deliveries' records count only by ids the runtime
// makes, with a legacy mark for those written before): its process records, delivery
// records and snapshots are those of that version.
//
// The process manager Orders (handles Placed, Paid, Item) decides, for a placed order,
// a deadline Remind at the order's "remind" minutes after it was placed, until it is
// paid, and Ship once it is paid. Orders 1 and 2 are shipped (delivered); order 3's
// Ship is refused by the receiver until it is parked; order 4 is placed with a
// reminder a day away (pending); order 5 is placed with a reminder a day away and gets
// 10 items, so its stream holds snapshots (SnapshotEvery 3); order 6's reminder, a
// minute away, is issued and delivered as the clock passes it. The subscription Audit
// (category Order) delivers every event but order 3's Placed, which it parks
// (MaxAttempts 1). Every runner stops cleanly and the store is closed. It prints, as
// JSON, the manager's clock at the end and the command ids issued and delivered.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

type order struct {
	Placed time.Time
	Remind int
	Paid   bool
	Items  int
}

func def() pm.Definition[order] {
	return pm.Definition[order]{
		Name:      "Orders",
		Handles:   []string{"Placed", "Paid", "Item"},
		ProcessID: pm.DataField("order"),
		Init:      func(string) order { return order{} },
		Apply: func(o order, e pmd.Event) order {
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
		Decide: func(o order) []pm.Command {
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

type want struct {
	Clock     time.Time         `json:"clock"`
	Issued    map[string]string `json:"issued"` // "<order> <type>" -> command id
	Delivered []string          `json:"delivered"`
	Audit     []string          `json:"audit"`  // event ids delivered
	Parked    string            `json:"parked"` // Audit's parked event id
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func id(s string) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(s)) }

func main() {
	dir := os.Args[1]
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet})
	must(err)
	var mu sync.Mutex
	out := want{Issued: map[string]string{}}
	clock := pmtest.NewClock(time.Now().UTC().Truncate(time.Second))
	m, err := pm.New(s, def(), pm.Options{Logger: quiet, Clock: clock, CheckpointEvery: 1,
		SnapshotEvery: 3, MaxAttempts: 2, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Deliver: func(_ context.Context, c pm.Command) error {
			mu.Lock()
			defer mu.Unlock()
			out.Issued[c.ProcessID+" "+c.Type] = c.ID.String()
			if c.ProcessID == "3" {
				return errors.New("receiver refused it")
			}
			out.Delivered = append(out.Delivered, c.ID.String())
			return nil
		}})
	must(err)
	audit, err := pm.NewSubscription(s, "Audit", pm.Filter{Category: "Order"}, pm.SubscriptionOptions{
		Logger: quiet, SaveEvery: time.Millisecond, MaxAttempts: 1,
		Deliver: func(_ context.Context, e pmd.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if e.Type == "Placed" && e.Data["order"] == "3" {
				out.Parked = e.ID.String()
				return errors.New("receiver refused it")
			}
			out.Audit = append(out.Audit, e.ID.String())
			return nil
		}})
	must(err)
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- m.Run(run) }()
	go func() { done <- audit.Run(run) }()

	add := func(n int, typ string, i int, data map[string]any) {
		data["order"] = strconv.Itoa(n)
		e := pmd.EventData{ID: id(fmt.Sprintf("%s %d %d", typ, n, i)), Type: typ, Data: data}
		_, err := s.Append(ctx, "Order$"+strconv.Itoa(n), pmd.Any, e)
		must(err)
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
	must(m.WaitIdle(ctx))
	clock.Advance(5 * time.Minute) // order 6's reminder
	must(m.WaitIdle(ctx))
	must(audit.WaitIdle(ctx))
	// Order 3's Ship is parked after MaxAttempts; wait until it is.
	for {
		if len(m.Parked()) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	out.Clock = clock.Now()

	stop()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			panic(err)
		}
	}
	must(s.Close())
	mu.Lock()
	defer mu.Unlock()
	b, err := json.MarshalIndent(out, "", "  ")
	must(err)
	fmt.Println(string(b))
}
