package pm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestParkedCommandOfAnErasedProcessShowsNoData: a parked command of a process whose
// stream was erased since it was issued is listed (Parked, what the parked route, pmd
// parked and the web page show) without its data, which the erasure erased with its
// record; the parked command of a process not erased keeps its data.
func TestParkedCommandOfAnErasedProcessShowsNoData(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	r := startParking(t, s, "email", nil)
	for _, id := range []string{"1", "2"} {
		appendFact(t, s, pmd.Event{Type: "SignedUp", Data: map[string]any{"id": id, "email": id + "@example.com"}})
	}
	r.idle(t)
	if err := s.EraseStream(ctx, "W$1"); err != nil {
		t.Fatal(err)
	}
	parked, total, err := parkedList(ctx, r.Manager, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 2 || total != 2 {
		t.Fatalf("%d commands parked, want 2: %+v", len(parked), parked)
	}
	for _, pc := range parked {
		switch pc.Command.ProcessID {
		case "1":
			if pc.Command.Data != nil {
				t.Errorf("the parked command of the erased process shows its erased data: %v", pc.Command.Data)
			}
		case "2":
			if pc.Command.Data["to"] != "2@example.com" {
				t.Errorf("the parked command of process 2, not erased, shows the data %v", pc.Command.Data)
			}
		}
	}
}

// startParking starts on s a manager, W, whose process issues Welcome to the value of
// the field to of its facts, and whose every command parks at its first failure: its
// receiver is down. It logs to logger (nil: nowhere).
func startParking(t *testing.T, s *pmd.Store, to string, logger *slog.Logger) *running {
	t.Helper()
	def := pm.Definition[string]{
		Name: "W", Handles: []string{"SignedUp"}, ProcessID: pm.DataField("id"),
		Init:  func(string) string { return "" },
		Apply: func(got string, e pmd.Event) string { v, _ := e.Data[to].(string); return max(got, v) },
		Decide: func(state string) []pm.Command {
			return []pm.Command{{Type: "Welcome", Data: map[string]any{"to": state}}}
		},
	}
	return start(t, s, def, pm.Options{SnapshotEvery: -1, MaxAttempts: 1, Logger: logger,
		Deliver: func(context.Context, pm.Command) error { return errors.New("receiver down") }})
}

// parkFive starts a manager whose every command parks at its first failure, and parks
// the commands of processes 1 to 5, in that order.
func parkFive(t *testing.T) *running {
	t.Helper()
	return parkFiveLogging(t, nil)
}

// parkFiveLogging is parkFive with the manager logging to logger (nil: nowhere).
func parkFiveLogging(t *testing.T, logger *slog.Logger) *running {
	t.Helper()
	s := openStore(t, t.TempDir())
	r := startParking(t, s, "id", logger)
	for i := 1; i <= 5; i++ {
		appendFact(t, s, pmd.Event{Type: "SignedUp", Data: map[string]any{"id": strconv.Itoa(i)}})
		r.idle(t)
	}
	return r
}

// TestParkedReadsOnlyThePageItLists: Parked with a limit looks up the records of the
// commands it lists, not those of every parked command, and still counts them all.
func TestParkedReadsOnlyThePageItLists(t *testing.T) {
	r := parkFive(t)
	var lookups atomic.Int64
	defer pm.SetParkedLookup(r.Manager, func(s *pmd.Store, ctx context.Context, id uuid.UUID) (pmd.Event, error) {
		lookups.Add(1)
		return s.Event(ctx, id)
	})()
	for _, tc := range []struct {
		limit, want int
	}{{2, 2}, {5, 5}, {9, 5}, {0, 5}} {
		lookups.Store(0)
		page, total, err := parkedList(context.Background(), r.Manager, tc.limit)
		if err != nil {
			t.Fatalf("limit %d: %v", tc.limit, err)
		}
		if total != 5 || len(page) != tc.want {
			t.Fatalf("limit %d: %d listed of %d, want %d of 5", tc.limit, len(page), total, tc.want)
		}
		for i, pc := range page {
			if want := strconv.Itoa(i + 1); pc.Command.ProcessID != want || pc.Command.Data["to"] != want {
				t.Errorf("limit %d: listed %d is %s with %v, want process %s with its data", tc.limit, i, pc.Command.ProcessID, pc.Command.Data, want)
			}
		}
		if n := lookups.Load(); n != int64(tc.want) {
			t.Errorf("limit %d: %d records read to list %d commands", tc.limit, n, tc.want)
		}
	}
}

// TestParkedFailsWhenALookupFails: a parked command whose record cannot be read fails
// Parked, naming the command, rather than being listed as if erased; ctx done fails it
// too. A record no longer stored lists the command without its data.
func TestParkedFailsWhenALookupFails(t *testing.T) {
	r := parkFive(t)
	ctx := context.Background()
	disk := errors.New("disk on fire")
	restore := pm.SetParkedLookup(r.Manager, func(*pmd.Store, context.Context, uuid.UUID) (pmd.Event, error) {
		return pmd.Event{}, disk
	})
	page, _, err := parkedList(ctx, r.Manager, 2)
	restore()
	if !errors.Is(err, disk) || page != nil {
		t.Fatalf("Parked with a failing lookup: %v, %+v; want the lookup's error and no list", err, page)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := parkedList(cancelled, r.Manager, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Parked with ctx done: %v, want context.Canceled", err)
	}
	defer pm.SetParkedLookup(r.Manager, func(_ *pmd.Store, _ context.Context, id uuid.UUID) (pmd.Event, error) {
		return pmd.Event{}, &pmd.EventNotFoundError{ID: id}
	})()
	page, total, err := parkedList(ctx, r.Manager, 2)
	if err != nil || total != 5 || len(page) != 2 || page[0].Command.Data != nil {
		t.Fatalf("Parked with records no longer stored: %v, %d of %d, %+v; want them without data", err, len(page), total, page)
	}
}

// TestParkedListsADamagedRecordWithoutData: a parked command whose record is damaged
// (pmd.ErrCorrupt) does not fail Parked, which would take the whole parked page down
// until the operator skipped a command named only in the error: it is listed without
// its data, the others with theirs, and the damage is logged once per command, naming
// it, however often the page is read.
func TestParkedListsADamagedRecordWithoutData(t *testing.T) {
	var log logged
	r := parkFiveLogging(t, log.logger())
	ctx := context.Background()
	all, _, err := parkedList(ctx, r.Manager, 0)
	if err != nil {
		t.Fatal(err)
	}
	damaged := all[1].Command.ID
	defer pm.SetParkedLookup(r.Manager, func(s *pmd.Store, ctx context.Context, id uuid.UUID) (pmd.Event, error) {
		if id == damaged {
			return pmd.Event{}, fmt.Errorf("segment 3 at 4096: checksum mismatch: %w", pmd.ErrCorrupt)
		}
		return s.Event(ctx, id)
	})()
	for range 3 {
		page, total, err := parkedList(ctx, r.Manager, 0)
		if err != nil {
			t.Fatalf("Parked with a damaged record: %v, want the page", err)
		}
		if total != 5 || len(page) != 5 {
			t.Fatalf("%d listed of %d, want 5 of 5", len(page), total)
		}
		for i, pc := range page {
			switch want := strconv.Itoa(i + 1); {
			case pc.Command.ID == damaged:
				if pc.Command.Data != nil {
					t.Errorf("the command with a damaged record shows the data %v", pc.Command.Data)
				}
			case pc.Command.Data["to"] != want:
				t.Errorf("listed %d shows the data %v, want its own", i, pc.Command.Data)
			}
		}
	}
	n := 0
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "damaged") && strings.Contains(line, damaged.String()) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the damaged record of command %s logged %d times, want once:\n%s", damaged, n, log.String())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := parkedList(cancelled, r.Manager, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Parked with ctx done: %v, want context.Canceled", err)
	}
}

// parked lists every parked command of r, failing the test if Parked fails.
func (r *running) parked(t testing.TB) []pm.ParkedCommand {
	t.Helper()
	list, _, err := parkedList(context.Background(), r.Manager, 0)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// parkedList is the first limit parked commands of m (all for 0) and how many there are.
func parkedList(ctx context.Context, m *pm.Manager, limit int) ([]pm.ParkedCommand, int, error) {
	page, err := m.Parked(ctx, pm.ParkedOptions{Limit: limit})
	return page.Commands, page.Total, err
}
