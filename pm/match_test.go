package pm_test

import (
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// match is the catering process manager of the contract, the definition most tests of
// this package run: ConfirmOrder once both sides confirmed the menu, CancelOrder if that
// has not happened timeout after the first confirmation.
type match struct {
	Order     string
	Customer  bool
	Caterer   bool
	Started   time.Time
	Confirmed bool
	Cancelled bool
}

const timeout = 48 * time.Hour

func matchDef(name string) pm.Definition[match] { return matchDefWithin(name, timeout) }

// matchDefWithin is matchDef with its deadline within after the first confirmation.
func matchDefWithin(name string, within time.Duration) pm.Definition[match] {
	return pm.Definition[match]{
		Name:      name,
		Handles:   []string{"CustomerConfirmedMenu", "CatererConfirmedMenu"},
		ProcessID: pm.DataField("order_id"),
		Init:      func(id string) match { return match{Order: id} },
		Apply: func(s match, e pmd.Event) match {
			if e.Link && s.Started.IsZero() {
				s.Started = e.Timestamp
			}
			switch e.Type {
			case "CustomerConfirmedMenu":
				s.Customer = true
			case "CatererConfirmedMenu":
				s.Caterer = true
			case "ConfirmOrder":
				s.Confirmed = true
			case "CancelOrder":
				s.Cancelled = true
			}
			return s
		},
		Decide: func(s match) []pm.Command {
			data := map[string]any{"order_id": s.Order}
			switch {
			case s.Cancelled:
				return nil
			case s.Customer && s.Caterer:
				return []pm.Command{{Type: "ConfirmOrder", Data: data}}
			default:
				return []pm.Command{{Type: "CancelOrder", Data: data, At: s.Started.Add(within)}}
			}
		},
	}
}

func customer(order string) pmd.Event {
	return pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}}
}

func caterer(order string) pmd.Event {
	return pmd.Event{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": order}}
}

func confirm(order string) pm.Command {
	return pm.Command{Type: "ConfirmOrder", Data: map[string]any{"order_id": order}, ProcessID: order}
}

func cancel(order string) pm.Command {
	return pm.Command{Type: "CancelOrder", Data: map[string]any{"order_id": order}, ProcessID: order}
}
