package pm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// manyCommands runs a manager whose process "a" issues one command per Tick (its data
// pad bytes long), the command of the first tick failing fails times before it is
// delivered, and appends n ticks.
type manyCommands struct {
	r   *running
	s   *pmd.Store
	pad int
	mu  sync.Mutex
	// tries counts the attempts of each command, delivered the commands delivered.
	tries     map[uuid.UUID]int
	delivered map[uuid.UUID]bool
	// all is closed once every command of the ticks appended is delivered (tick).
	all   chan struct{}
	ticks int
}

func startManyCommands(t *testing.T, pad, fails int) *manyCommands {
	t.Helper()
	mc := &manyCommands{s: openStore(t, t.TempDir()), pad: pad, tries: map[uuid.UUID]int{}, delivered: map[uuid.UUID]bool{}}
	def := pm.Definition[int]{
		Name: "M", Handles: []string{"Tick"}, ProcessID: pm.DataField("id"),
		Init:  func(string) int { return 0 },
		Apply: func(n int, _ pmd.Event) int { return n + 1 },
		Decide: func(n int) []pm.Command {
			return []pm.Command{{Type: "Do", Key: fmt.Sprint(n), Data: map[string]any{"n": n, "pad": strings.Repeat("x", pad)}}}
		},
	}
	mc.r = start(t, mc.s, def, pm.Options{SnapshotEvery: -1, MaxAttempts: fails + 1, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Deliver: func(_ context.Context, c pm.Command) error {
			mc.mu.Lock()
			defer mc.mu.Unlock()
			mc.tries[c.ID]++
			if c.Key == "1" && mc.tries[c.ID] <= fails {
				return errors.New("not yet")
			}
			mc.delivered[c.ID] = true
			if mc.all != nil && len(mc.delivered) >= mc.ticks {
				close(mc.all)
				mc.all = nil
			}
			return nil
		}})
	return mc
}

// tick appends n ticks of process a and waits until the manager has delivered the
// commands of every tick and written their records. WaitIdle alone is not enough: it
// returns while a command waits for its next retry, and the first command fails fails
// times, the commands after it waiting behind it.
func (mc *manyCommands) tick(t *testing.T, n int) {
	t.Helper()
	all := make(chan struct{})
	mc.mu.Lock()
	mc.ticks += n
	mc.all = all
	mc.mu.Unlock()
	for range n {
		appendFact(t, mc.s, pmd.Event{Type: "Tick", Data: map[string]any{"id": "a"}})
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	select {
	case <-all:
	case <-deadline.C:
		mc.mu.Lock()
		defer mc.mu.Unlock()
		t.Fatalf("after 30 s, %d of the commands of %d ticks are delivered", len(mc.delivered), mc.ticks)
	}
	mc.r.idle(t)
}

// TestProcessPageCommands pages through the commands of a process with hundreds of
// them, and through the hundreds of delivery records of one, while more are issued
// between the pages: each page holds at most its limits and, bounded in bytes, about
// half the bound, and the pages show every command exactly once, in the order issued,
// and every record of the one.
func TestProcessPageCommands(t *testing.T) {
	ctx := context.Background()
	const fails = 90
	mc := startManyCommands(t, 300, fails)
	mc.tick(t, 120)

	for _, tt := range []struct {
		name  string
		opts  pm.PageOptions
		most  int // commands a page may hold
		bytes int // the commands' data a page may hold, unless one
	}{
		{"by count", pm.PageOptions{CommandsLimit: 7, AttemptsLimit: 5}, 7, 0},
		{"by bytes", pm.PageOptions{PageBytes: 8 << 10, AttemptsLimit: 1000}, 100, 4 << 10},
		{"defaults", pm.PageOptions{}, 100, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[uuid.UUID]bool{}
			var order []int64
			o := tt.opts
			for pages := 0; ; pages++ {
				page, err := mc.r.ProcessPage(ctx, "a", -1, 10, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Commands) == 0 || len(page.Commands) > tt.most || len(page.CommandInfo) != len(page.Commands) {
					t.Fatalf("page %d (from %d): %d commands, %d infos", pages, o.CommandsFrom, len(page.Commands), len(page.CommandInfo))
				}
				data := 0
				for i, c := range page.Commands {
					if seen[c.ID] {
						t.Fatalf("page %d (from %d) shows command %s again", pages, o.CommandsFrom, c.ID)
					}
					seen[c.ID] = true
					order = append(order, page.CommandInfo[i].Version)
					data += len(c.Data["pad"].(string))
					if info := page.CommandInfo[i]; !info.Delivered || info.Settled != pm.OutcomeDelivered || info.Last != pm.OutcomeDelivered {
						t.Errorf("command %s: %+v, want it delivered", c.Key, info)
					}
				}
				if tt.bytes > 0 && len(page.Commands) > 1 && data > tt.bytes {
					t.Errorf("page %d: %d commands with %d bytes of data, over half the bound %d", pages, len(page.Commands), data, tt.opts.PageBytes)
				}
				limit := max(tt.opts.AttemptsLimit, 100)
				if tt.opts.AttemptsLimit > 0 {
					limit = tt.opts.AttemptsLimit
				}
				perCommand := map[uuid.UUID]int{}
				for _, d := range page.Deliveries {
					perCommand[d.CommandID]++
				}
				for id, n := range perCommand {
					if n > limit {
						t.Errorf("page %d: %d records of command %s, over the limit %d", pages, n, id, limit)
					}
				}
				if pages == 0 {
					mc.tick(t, 20) // issued between pages: shown at the end
				}
				if page.CommandsNext < 0 {
					break
				}
				if page.CommandsNext <= order[len(order)-1] {
					t.Fatalf("page %d: next %d, not past the last version shown %d", pages, page.CommandsNext, order[len(order)-1])
				}
				o.CommandsFrom = page.CommandsNext
			}
			if len(seen) != mc.ticks {
				t.Errorf("the pages show %d commands, want %d", len(seen), mc.ticks)
			}
			for i := 1; i < len(order); i++ {
				if order[i] <= order[i-1] {
					t.Fatalf("the pages show the command of version %d after that of %d", order[i], order[i-1])
				}
			}
		})
	}

	t.Run("the records of one command", func(t *testing.T) {
		all, err := mc.r.Deliveries(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		first, err := mc.r.ProcessPage(ctx, "a", -1, 10, pm.PageOptions{CommandsLimit: 1})
		if err != nil || len(first.Commands) != 1 {
			t.Fatalf("%d commands, %v", len(first.Commands), err)
		}
		want := 0
		for _, d := range all {
			if d.CommandID == first.Commands[0].ID {
				want++
			}
		}
		if want != fails+1 {
			t.Fatalf("the first command has %d records, want %d", want, fails+1)
		}
		o := pm.PageOptions{CommandsFrom: first.CommandInfo[0].Version, CommandsLimit: 1, AttemptsLimit: 40}
		var got []pm.Delivery
		for pages := 0; pages <= want; pages++ {
			page, err := mc.r.ProcessPage(ctx, "a", -1, 10, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Deliveries) > 40 {
				t.Fatalf("%d records on a page, over the limit 40", len(page.Deliveries))
			}
			got = append(got, page.Deliveries...)
			if page.CommandInfo[0].AttemptsNext < 0 {
				break
			}
			o.AttemptsFrom = page.CommandInfo[0].AttemptsNext
		}
		if len(got) != want {
			t.Fatalf("the pages show %d records of the first command, want %d", len(got), want)
		}
		for i, d := range got {
			if d.Attempt != i+1 {
				t.Fatalf("record %d is of attempt %d", i, d.Attempt)
			}
		}
	})
}

// TestProcessPageEscapedErrors pages a command whose 20 failed attempts have errors of
// 4 KiB of "<", which JSON writes as 6 bytes each: the page bounded to 64 KiB holds
// its commands and records in about half of that, as written, not as long as the
// errors are.
func TestProcessPageEscapedErrors(t *testing.T) {
	const fails = 20
	s := openStore(t, t.TempDir())
	delivered := make(chan struct{})
	var tries atomic.Int32
	def := pm.Definition[int]{
		Name: "M", Handles: []string{"Tick"}, ProcessID: pm.DataField("id"),
		Init:   func(string) int { return 0 },
		Apply:  func(n int, _ pmd.Event) int { return n + 1 },
		Decide: func(n int) []pm.Command { return []pm.Command{{Type: "Do", Key: fmt.Sprint(n)}} },
	}
	r := start(t, s, def, pm.Options{SnapshotEvery: -1, MaxAttempts: fails + 1, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Deliver: func(context.Context, pm.Command) error {
			if tries.Add(1) <= fails {
				return errors.New(strings.Repeat("<", 4<<10))
			}
			close(delivered)
			return nil
		}})
	appendFact(t, s, pmd.Event{Type: "Tick", Data: map[string]any{"id": "a"}})
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	select {
	case <-delivered:
	case <-deadline.C:
		t.Fatal("the command is not delivered after 30 s")
	}
	r.idle(t)

	const pageBytes = 64 << 10
	o := pm.PageOptions{PageBytes: pageBytes}
	var records int
	for pages := 0; pages <= fails+1; pages++ {
		page, err := r.ProcessPage(context.Background(), "a", -1, 10, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Commands) != 1 || len(page.Deliveries) == 0 {
			t.Fatalf("page %d: %d commands, %d records", pages, len(page.Commands), len(page.Deliveries))
		}
		b, err := json.Marshal(struct {
			Commands   []pm.Command
			Deliveries []pm.Delivery
		}{page.Commands, page.Deliveries})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > pageBytes/2 {
			t.Fatalf("page %d: the command and its %d records take %d bytes of JSON, over half the bound %d", pages, len(page.Deliveries), len(b), pageBytes)
		}
		records += len(page.Deliveries)
		if page.CommandInfo[0].AttemptsNext < 0 {
			break
		}
		o.AttemptsFrom = page.CommandInfo[0].AttemptsNext
	}
	if records != fails+1 {
		t.Errorf("the pages show %d records, want %d", records, fails+1)
	}
}

// TestProcessPageCommandsNotAttempted pages, bounded in bytes, through commands no
// attempt was made to deliver (the manager has no Deliver handler): the commands alone
// fill the page, about half the bound of them.
func TestProcessPageCommandsNotAttempted(t *testing.T) {
	const pad, ticks = 300, 60
	s := openStore(t, t.TempDir())
	def := pm.Definition[int]{
		Name: "M", Handles: []string{"Tick"}, ProcessID: pm.DataField("id"),
		Init:  func(string) int { return 0 },
		Apply: func(n int, _ pmd.Event) int { return n + 1 },
		Decide: func(n int) []pm.Command {
			return []pm.Command{{Type: "Do", Key: fmt.Sprint(n), Data: map[string]any{"pad": strings.Repeat("x", pad)}}}
		},
	}
	r := start(t, s, def, pm.Options{SnapshotEvery: -1})
	for range ticks {
		appendFact(t, s, pmd.Event{Type: "Tick", Data: map[string]any{"id": "a"}})
	}
	r.idle(t)

	const pageBytes = 8 << 10
	o := pm.PageOptions{PageBytes: pageBytes}
	shown, pages := 0, 0
	for ; ; pages++ {
		page, err := r.ProcessPage(context.Background(), "a", -1, 10, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Commands) == 0 || len(page.Deliveries) != 0 {
			t.Fatalf("page %d: %d commands, %d records", pages, len(page.Commands), len(page.Deliveries))
		}
		if data := len(page.Commands) * pad; len(page.Commands) > 1 && data > pageBytes/2 {
			t.Fatalf("page %d: %d commands with %d bytes of data, over half the bound %d", pages, len(page.Commands), data, pageBytes)
		}
		shown += len(page.Commands)
		if page.CommandsNext < 0 {
			break
		}
		o.CommandsFrom = page.CommandsNext
	}
	if shown != ticks || pages < 2 {
		t.Errorf("%d pages show %d commands, want %d on more than one", pages+1, shown, ticks)
	}
}
