package main

import (
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// Order is the state of one catering order: the fold of its stream CateringMatch$<id>.
type Order struct {
	ID        string
	Customer  bool      // CustomerConfirmedMenu seen
	Caterer   bool      // CatererConfirmedMenu seen
	Started   time.Time // when the first confirmation was written
	Confirmed bool      // ConfirmOrder issued
	Cancelled bool      // CancelOrder issued
}

// CateringMatch issues ConfirmOrder once the customer and the caterer have both
// confirmed the menu of an order, and CancelOrder if that has not happened timeout
// after the first confirmation.
func CateringMatch(timeout time.Duration) pm.Definition[Order] {
	return pm.Definition[Order]{
		Name:      "CateringMatch",
		Handles:   []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"},
		ProcessID: pm.DataField("order_id"),
		Init:      func(id string) Order { return Order{ID: id} },
		Apply: func(o Order, e pmd.Event) Order {
			if e.Link && o.Started.IsZero() {
				o.Started = e.Timestamp
			}
			switch e.Type {
			case "CustomerConfirmedMenu":
				o.Customer = true
			case "CatererConfirmedMenu":
				o.Caterer = true
			case "ConfirmOrder":
				o.Confirmed = true
			case "CancelOrder":
				o.Cancelled = true
			}
			return o
		},
		Decide: func(o Order) []pm.Command {
			data := map[string]any{"order_id": o.ID}
			switch {
			case o.Cancelled:
				return nil // too late: nothing more for this order
			case o.Customer && o.Caterer:
				return []pm.Command{{Type: "ConfirmOrder", Data: data}}
			default:
				return []pm.Command{{Type: "CancelOrder", Data: data, At: o.Started.Add(timeout)}}
			}
		},
	}
}
