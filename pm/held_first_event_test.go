package pm_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestAProcessHeldAtItsFirstEventIsShown: a process whose first event makes Init,
// Apply or Decide panic is held with nothing written, so it has no stream. While the
// running manager holds it, Process, ProcessPage and List show it as held, with the
// panic and no event (version -1), as they show one held later and as Memory does: they
// answered ErrProcessNotFound and left it out of the list, hiding the one process an
// operator had to look at.
func TestAProcessHeldAtItsFirstEventIsShown(t *testing.T) {
	for _, callback := range []string{"Init", "Apply", "Decide"} {
		t.Run(callback, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var broken atomic.Value
			broken.Store(callback)
			r := start(t, s, ackDef(&broken), pm.Options{Clock: pmtest.NewClock(time.Now())})
			bad := goFact("2")
			bad.Data["bad"] = true
			appendFact(t, s, goFact("1"))
			appendFact(t, s, bad)
			appendFact(t, s, goFact("3"))
			r.idle(t)
			if events := processStream(t, s, "Acks$2"); len(events) != 0 {
				t.Fatalf("process 2 has %d events in its stream; want none written (held at its first)", len(events))
			}

			want := callback + " bug"
			v, err := r.Process(ctx, "2")
			if err != nil || !strings.Contains(v.Panic, want) || v.Version != -1 || len(v.Events) != 0 || len(v.Commands) != 0 || v.ID != "2" {
				t.Errorf("Process(2): version %d, %d events, %d commands, panic %q, %v; want it held: version -1, no event, no command, the panic",
					v.Version, len(v.Events), len(v.Commands), v.Panic, err)
			}
			// Bounded by bytes too, as the HTTP view always asks for its pages.
			for _, o := range []pm.PageOptions{{}, {PageBytes: 1 << 20}} {
				page, err := r.ProcessPage(ctx, "2", -1, 10, o)
				if err != nil || !strings.Contains(page.Panic, want) || page.Version != -1 || len(page.Events) != 0 || page.Older != -1 {
					t.Errorf("ProcessPage(2, %+v): version %d, %d events, older %d, panic %q, %v; want it held: version -1, no event, the panic",
						o, page.Version, len(page.Events), page.Older, page.Panic, err)
				}
			}
			list, err := r.List(ctx, pm.ListOptions{})
			if err != nil || len(list.Processes) != 3 {
				t.Fatalf("List: %+v, %v; want processes 1, 2 (held) and 3", list, err)
			}
			for i, id := range []string{"1", "2", "3"} {
				p := list.Processes[i]
				if p.ID != id || (id == "2") != strings.Contains(p.Panic, want) {
					t.Errorf("List[%d] = %+v; want process %s, held only if 2", i, p, id)
				}
			}
			if p := list.Processes[1]; p.Version != -1 || p.Events != 0 || p.Status != pm.StatusOpen {
				t.Errorf("List shows process 2 as %+v; want version -1, no event, open", p)
			}
			// Paged: the held process is where its id sorts, once.
			var ids []string
			for after := ""; ; {
				page, err := r.List(ctx, pm.ListOptions{After: after, Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range page.Processes {
					ids = append(ids, p.ID)
				}
				if after = page.Next; after == "" {
					break
				}
			}
			if strings.Join(ids, " ") != "1 2 3" {
				t.Errorf("List a process at a time: %v; want [1 2 3]", ids)
			}
			byAge, err := r.List(ctx, pm.ListOptions{ByAge: true})
			if err != nil || len(byAge.Processes) != 3 || byAge.Processes[0].ID != "2" {
				t.Errorf("List by age: %+v, %v; want the held process (no event) first, then 1 and 3", byAge.Processes, err)
			}
			older, err := r.List(ctx, pm.ListOptions{OlderThan: time.Nanosecond, Now: time.Now().Add(time.Hour)})
			if err != nil || len(older.Processes) != 2 {
				t.Errorf("List older than: %+v, %v; want processes 1 and 3 (2 has no first event)", older.Processes, err)
			}
			if _, err := r.Process(ctx, "4"); err == nil {
				t.Error("Process(4) of a process that never was: no error; want ErrProcessNotFound")
			}
		})
	}
}
