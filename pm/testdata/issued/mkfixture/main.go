// mkfixture writes a data directory in which a process manager issued commands, with
// the pmd of commit b387b1a: before stores had ids, when command ids were UUIDv5 in
// package pm's namespace itself. Orders 1 to 6 get Placed and Paid (each issues Ship),
// orders 7 to 9 Placed only (open). The webhook takes the commands of odd orders and
// refuses the others, so Ship of orders 2, 4 and 6 is undelivered with a failure
// recorded. It prints, as JSON, the id of each command issued and whether it was
// delivered.
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
)

type order struct {
	Placed, Paid bool
}

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
	Commands  map[string]string `json:"commands"`  // process id -> command id
	Delivered map[string]bool   `json:"delivered"` // command id -> delivered
}

func main() {
	dir := os.Args[1]
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet})
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	delivered := map[string]bool{}
	m, err := pm.New(s, def(), pm.Options{Logger: quiet, RetryMin: time.Hour, RetryMax: time.Hour,
		Deliver: func(_ context.Context, c pm.Command) error {
			n, _ := strconv.Atoi(c.ProcessID)
			if n%2 == 0 {
				return errors.New("receiver refused it")
			}
			mu.Lock()
			delivered[c.ID.String()] = true
			mu.Unlock()
			return nil
		}})
	if err != nil {
		panic(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- m.Run(run) }()
	for n := 1; n <= 9; n++ {
		types := []string{"Placed", "Paid"}
		if n > 6 {
			types = types[:1]
		}
		for i, typ := range types {
			id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "fact %d/%d", n, i))
			e := pmd.EventData{ID: id, Type: typ, Data: map[string]any{"order": strconv.Itoa(n)}}
			if _, err := s.Append(ctx, "Orders$"+strconv.Itoa(n), pmd.Any, e); err != nil {
				panic(err)
			}
		}
	}
	if err := m.WaitIdle(ctx); err != nil {
		panic(err)
	}
	stop()
	if err := <-done; err != nil {
		panic(err)
	}
	out := want{Commands: map[string]string{}, Delivered: map[string]bool{}}
	for n := 1; n <= 9; n++ {
		p, err := m.Process(ctx, strconv.Itoa(n))
		if err != nil {
			panic(err)
		}
		for _, c := range p.Commands {
			out.Commands[p.ID] = c.ID.String()
			out.Delivered[c.ID.String()] = delivered[c.ID.String()]
		}
	}
	if err := s.Close(); err != nil {
		panic(err)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
}
