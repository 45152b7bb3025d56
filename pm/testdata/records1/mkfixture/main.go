// mkfixture writes a data directory with the pmd of commit 71aa2c0, a version before
// 74cedd4 (which added the "filter" field to a subscription's records and the "types"
// field to a manager's checkpoints): its records carry neither, and its log already
// holds retention, erase and gone records and erased events under data directory
// format 2.
//
// The process manager Ships (Placed, Paid) issues Ship for orders 1 to 4, all
// delivered, and checkpoints. The subscription Mailer (types Placed) delivers the
// Placed of orders 1 and 2 and fails on order 3's (a failure recorded, retry an hour
// later), which holds order 4's back. The subscription Audit (category Orders)
// delivers all eight. Logs$1 keeps its last 2 of 5 events (retention), Secret$1 is
// erased, Tmp$1 deleted, and a scavenge rewrites the sealed segments (gone records,
// erased events). Every runner stops cleanly and the store is closed. It prints, as
// JSON, what that version delivered and read.
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
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

type order struct{ Placed, Paid bool }

func def() pm.Definition[order] {
	return pm.Definition[order]{
		Name:      "Ships",
		Handles:   []string{"Placed", "Paid"},
		ProcessID: pm.DataField("order"),
		Init:      func(string) order { return order{} },
		Apply: func(o order, e pmd.Event) order {
			switch {
			case e.Link && e.Type == "Placed":
				o.Placed = true
			case e.Link && e.Type == "Paid":
				o.Paid = true
			}
			return o
		},
		Decide: func(o order) []pm.Command {
			if o.Placed && o.Paid {
				return []pm.Command{{Type: "Ship"}}
			}
			return nil
		},
	}
}

type want struct {
	Commands map[string]string   `json:"commands"` // process id -> command id
	Mailer   []string            `json:"mailer"`   // event ids delivered
	Failing  string              `json:"failing"`  // the event id whose delivery failed
	Audit    []string            `json:"audit"`    // event ids delivered
	Streams  map[string][]string `json:"streams"`  // stream -> event ids read
	Erased   []string            `json:"erased"`   // Secret$1's event ids, read without data
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
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet, SegmentSize: 8 << 10})
	must(err)
	var mu sync.Mutex
	out := want{Commands: map[string]string{}, Streams: map[string][]string{}}

	m, err := pm.New(s, def(), pm.Options{Logger: quiet, CheckpointEvery: 1,
		Deliver: func(context.Context, pm.Command) error { return nil }})
	must(err)
	mailer, err := pm.NewSubscription(s, "Mailer", pm.Filter{Types: []string{"Placed"}}, pm.SubscriptionOptions{
		Logger: quiet, RetryMin: time.Hour, RetryMax: time.Hour, SaveEvery: time.Millisecond,
		Deliver: func(_ context.Context, e pmd.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if e.Data["order"] == "3" {
				out.Failing = e.ID.String()
				return errors.New("receiver refused it")
			}
			out.Mailer = append(out.Mailer, e.ID.String())
			return nil
		}})
	must(err)
	audit, err := pm.NewSubscription(s, "Audit", pm.Filter{Category: "Orders"}, pm.SubscriptionOptions{
		Logger: quiet, SaveEvery: time.Millisecond,
		Deliver: func(_ context.Context, e pmd.Event) error {
			mu.Lock()
			defer mu.Unlock()
			out.Audit = append(out.Audit, e.ID.String())
			return nil
		}})
	must(err)
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 3)
	go func() { done <- m.Run(run) }()
	go func() { done <- mailer.Run(run) }()
	go func() { done <- audit.Run(run) }()

	for n := 1; n <= 4; n++ {
		for _, typ := range []string{"Placed", "Paid"} {
			e := pmd.EventData{ID: id(fmt.Sprintf("%s %d", typ, n)), Type: typ, Data: map[string]any{"order": strconv.Itoa(n)}}
			_, err := s.Append(ctx, "Orders$"+strconv.Itoa(n), pmd.Any, e)
			must(err)
		}
	}
	must(m.WaitIdle(ctx))
	must(mailer.WaitIdle(ctx))
	must(audit.WaitIdle(ctx))

	appendN := func(stream string, n, size int) {
		for i := range n {
			e := pmd.EventData{ID: id(fmt.Sprintf("%s %d", stream, i)), Type: "Noted",
				Data: map[string]any{"i": i, "pad": strings.Repeat("x", size)}}
			_, err := s.Append(ctx, stream, pmd.Any, e)
			must(err)
		}
	}
	appendN("Logs$1", 5, 200)
	appendN("Secret$1", 3, 200)
	appendN("Tmp$1", 3, 200)
	must(s.SetRetention(ctx, "Logs$1", pmd.Retention{MaxCount: 2}))
	must(s.EraseStream(ctx, "Secret$1"))
	must(s.DeleteStream(ctx, "Tmp$1", pmd.Any))
	appendN("Fill$1", 30, 1000) // seals the segments above, for the scavenge
	_, err = s.Scavenge(ctx, pmd.ScavengeOptions{})
	must(err)

	stop()
	for range 3 {
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			panic(err)
		}
	}
	for n := 1; n <= 4; n++ {
		p, err := m.Process(ctx, strconv.Itoa(n))
		must(err)
		for _, c := range p.Commands {
			out.Commands[p.ID] = c.ID.String()
		}
	}
	for _, stream := range []string{"Logs$1", "Secret$1", "Orders$3"} {
		for e, err := range s.ReadStream(ctx, stream, pmd.ReadOptions{}) {
			must(err)
			out.Streams[stream] = append(out.Streams[stream], e.ID.String())
			if stream == "Secret$1" && e.Data == nil {
				out.Erased = append(out.Erased, e.ID.String())
			}
		}
	}
	must(s.Close())
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
}
