package pm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm"
)

// idleBefore lists the ids of the processes whose last activity is at or before at.
func idleBefore(all []pm.ProcessSummary, at time.Time) []string {
	var out []string
	for _, p := range all {
		if !p.LastActivity.After(at) {
			out = append(out, p.ID)
		}
	}
	return out
}

// TestList: List filters by status, age and idleness, orders by id or by age, and
// pages either order without losing or repeating a process.
func TestList(t *testing.T) {
	s := openStore(t, t.TempDir())
	failing := errors.New("receiver down")
	r := start(t, s, matchDef("CateringMatch"), pm.Options{
		MaxAttempts: 1,
		Deliver: func(_ context.Context, c pm.Command) error {
			if c.ProcessID == "04" {
				return failing // parks at once: MaxAttempts is 1
			}
			return nil
		},
	})
	// Created in the reverse of their id order; the even ones complete, "07" gets a
	// second fact of its own later (it is idle for less time than it is old).
	for i := 9; i >= 0; i-- {
		id := fmt.Sprintf("%02d", i)
		appendFact(t, s, customer(id))
		if i%2 == 0 {
			appendFact(t, s, caterer(id))
		}
	}
	appendFact(t, s, customer("07"))
	r.idle(t)
	ctx := context.Background()
	list := func(opts pm.ListOptions) []pm.ProcessSummary {
		t.Helper()
		var out []pm.ProcessSummary
		for pages := 0; ; pages++ {
			page, err := r.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Processes) > max(opts.Limit, 0) && opts.Limit > 0 {
				t.Fatalf("a page of %d processes, limit %d", len(page.Processes), opts.Limit)
			}
			out = append(out, page.Processes...)
			if page.Next == "" {
				return out
			}
			if pages > 20 {
				t.Fatalf("more than 20 pages of %d", opts.Limit)
			}
			opts.After = page.Next
		}
	}
	ids := func(ps []pm.ProcessSummary) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	all := list(pm.ListOptions{})
	byID := map[string]pm.ProcessSummary{}
	for _, p := range all {
		byID[p.ID] = p
		if p.Created.IsZero() || p.LastActivity.Before(p.Created) {
			t.Errorf("process %s: created %v, last activity %v", p.ID, p.Created, p.LastActivity)
		}
	}
	if got := byID["07"]; !got.LastActivity.After(got.Created) {
		t.Errorf("07 got a fact after its first, yet its last activity is %v, created %v", got.LastActivity, got.Created)
	}
	if byID["04"].Parked != 1 || byID["02"].Parked != 0 {
		t.Errorf("parked counts: 04 has %d, 02 has %d; want 1 and 0", byID["04"].Parked, byID["02"].Parked)
	}
	// "09" was created first: the age of each is measured from a moment an hour
	// after the first event of "05", the sixth created.
	now := byID["05"].Created.Add(time.Hour)
	for _, tc := range []struct {
		name string
		opts pm.ListOptions
		want []string
	}{
		{"all", pm.ListOptions{}, []string{"00", "01", "02", "03", "04", "05", "06", "07", "08", "09"}},
		{"all by age", pm.ListOptions{ByAge: true}, []string{"09", "08", "07", "06", "05", "04", "03", "02", "01", "00"}},
		{"open", pm.ListOptions{Status: pm.StatusOpen}, []string{"01", "03", "05", "07", "09"}},
		{"completed by age", pm.ListOptions{Status: pm.StatusCompleted, ByAge: true}, []string{"08", "06", "04", "02", "00"}},
		{"expired", pm.ListOptions{Status: pm.StatusExpired}, nil},
		{"parked", pm.ListOptions{Status: pm.StatusParked}, []string{"04"}},
		{"parked by age", pm.ListOptions{Status: pm.StatusParked, ByAge: true}, []string{"04"}},
		{"open and an hour old", pm.ListOptions{Status: pm.StatusOpen, OlderThan: time.Hour, Now: now}, []string{"05", "07", "09"}},
		{"open, an hour old, by age", pm.ListOptions{Status: pm.StatusOpen, OlderThan: time.Hour, Now: now, ByAge: true}, []string{"09", "07", "05"}},
		// Idle for an hour an hour after 07 was created: 07 is not, its second fact
		// came later; the others are unless the runtime wrote to them after it.
		{"idle for an hour", pm.ListOptions{IdleFor: time.Hour, Now: byID["07"].Created.Add(time.Hour)}, idleBefore(all, byID["07"].Created)},
	} {
		for _, limit := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, limit), func(t *testing.T) {
				opts := tc.opts
				opts.Limit = limit
				if got := ids(list(opts)); !slices.Equal(got, tc.want) {
					t.Errorf("listed %v, want %v", got, tc.want)
				}
			})
		}
	}
	for _, opts := range []pm.ListOptions{
		{Status: "stuck"},
		{ByAge: true, After: "09"}, // a next of the id order
	} {
		if _, err := r.List(ctx, opts); !errors.Is(err, pm.ErrInvalidListing) {
			t.Errorf("List(%+v) = %v, want ErrInvalidListing", opts, err)
		}
	}
}
