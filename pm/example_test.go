package pm_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// Order is the state of a CateringMatch process.
type Order struct {
	ID                string
	Customer, Caterer bool
	Started           time.Time
	Cancelled         bool
}

// cateringMatch issues ConfirmOrder once both sides confirmed the menu of an order, and
// CancelOrder if that has not happened 48h after the first confirmation.
var cateringMatch = pm.Definition[Order]{
	Name:      "CateringMatch",
	Handles:   []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"},
	ProcessID: pm.DataField("order_id"),
	Init:      func(id string) Order { return Order{ID: id} },
	Apply: func(o Order, e pmd.Event) Order {
		if e.Link && o.Started.IsZero() {
			o.Started = e.Timestamp // the first handled event
		}
		switch e.Type {
		case "CustomerConfirmedMenu":
			o.Customer = true
		case "CatererConfirmedMenu":
			o.Caterer = true
		case "CancelOrder": // issued by this process
			o.Cancelled = true
		}
		return o
	},
	Decide: func(o Order) []pm.Command {
		data := map[string]any{"order_id": o.ID}
		switch {
		case o.Cancelled:
			return nil
		case o.Customer && o.Caterer:
			return []pm.Command{{Type: "ConfirmOrder", Data: data}}
		default:
			return []pm.Command{{Type: "CancelOrder", Data: data, At: o.Started.Add(48 * time.Hour)}}
		}
	},
}

func fact(typ, order string) pmd.Event {
	return pmd.Event{Type: typ, Data: map[string]any{"order_id": order}}
}

func ExampleMemory() {
	m, err := pm.NewMemory(cateringMatch, time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	for _, e := range []pmd.Event{
		fact("CustomerConfirmedMenu", "42"),
		fact("CustomerConfirmedMenu", "43"),
		fact("CatererConfirmedMenu", "42"),
		fact("CatererConfirmedMenu", "42"), // once is enough
	} {
		cmds, err := m.Handle(e)
		if err != nil {
			panic(err)
		}
		for _, c := range cmds {
			fmt.Println(m.Now().Format(time.Kitchen), c.Type, c.ProcessID)
		}
	}
	cmds, err := m.Advance(48 * time.Hour)
	if err != nil {
		panic(err)
	}
	for _, c := range cmds {
		fmt.Println(m.Now().Format(time.Kitchen), c.Type, c.ProcessID)
	}
	// Output:
	// 9:00AM ConfirmOrder 42
	// 9:00AM CancelOrder 43
}

func ExampleManager() {
	dir, err := os.MkdirTemp("", "pm-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	m, err := pm.New(store, cateringMatch, pm.Options{
		Deliver: func(_ context.Context, c pm.Command) error {
			fmt.Println("deliver", c.Type, c.Data["order_id"])
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	for _, e := range []pmd.EventData{
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42"}},
		{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}},
	} {
		if _, err := store.Append(ctx, "Confirmations", pmd.Any, e); err != nil {
			panic(err)
		}
	}
	if err := m.WaitIdle(ctx); err != nil {
		panic(err)
	}
	p, err := m.Process(ctx, "42")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Stream, p.Status)
	for _, e := range p.Events {
		fmt.Println(" ", e.Version, e.Type, "link:", e.Link)
	}
	stop()
	if err := <-done; err != nil {
		panic(err)
	}
	// Output:
	// deliver ConfirmOrder 42
	// CateringMatch$42 completed
	//   0 CustomerConfirmedMenu link: true
	//   1 DeadlineScheduled link: false
	//   2 CatererConfirmedMenu link: true
	//   3 ConfirmOrder link: false
	//   4 DeadlineCancelled link: false
}
