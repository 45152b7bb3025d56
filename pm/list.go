package pm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pmd-dev/pmd"
)

// StatusParked, as ListOptions.Status, selects the processes with a parked command,
// whatever their status.
const StatusParked Status = "parked"

// ListOptions selects, orders and pages the processes List returns. The zero value
// lists every process in id order, 100 at a time.
type ListOptions struct {
	// Status keeps the processes of one status (StatusOpen, StatusCompleted,
	// StatusExpired), or those with a parked command (StatusParked); "" keeps all.
	Status Status
	// OlderThan keeps the processes whose first event is at least this old; IdleFor
	// those whose last event is. 0 keeps all. A process held at its first event (see
	// Manager.Process), which has none, is kept by neither.
	OlderThan, IdleFor time.Duration
	// ByAge lists the oldest process (by its first event) first, rather than in id
	// order: the processes stuck longest come first, after those held at their first
	// event, which have none.
	ByAge bool
	// After is ListPage.Next of the page before; "" starts at the first.
	After string
	// Limit is the most processes on a page; 0 means 100.
	Limit int
	// Now is what ages are counted from; the zero value is the wall clock's now.
	Now time.Time
	// Hold, when set, decodes the events that the fold of each process looked at reads,
	// as PageOptions.Hold does those of a page: each given back once folded. A server
	// passes one that reserves their bytes of its memory budget before decoding them.
	Hold func(ev *pmd.Event) (release func(), err error)
}

// ListPage is a page of List.
type ListPage struct {
	Processes []ProcessSummary
	// Next is the After of the next page; "" when this page is the last.
	Next string
}

// List lists the processes that opts selects, a page at a time. It reads the store
// (the Manager need not be running) and costs, per page:
//
//   - in id order with no filter: one fold (from the newest snapshot) and two one-event
//     reads per process shown, Limit+1 of them;
//   - in id order with a filter: the same for every process looked at until Limit+1
//     match, so a filter that few processes pass reads many of them;
//   - by age: a one-event read of every process of the manager (or, with StatusParked,
//     of every process with a parked command), whose first event's timestamp orders
//     them, then the same as in id order for the processes looked at, oldest first,
//     until Limit+1 match. On two cores, a page of the open processes oldest first
//     takes about 0.3 s among 10,000 processes of which one in ten is open
//     (BenchmarkList, whose processes have their facts from one stream); the reads
//     grow with the manager's processes;
//   - each fold from a snapshot, one more one-event read per stream of the facts the
//     snapshot folded, to tell whether one was erased since (see the package doc,
//     "Erasing a process"): a process with facts from many streams costs every page
//     that looks at it more (ProcessPage of one with facts from 100 streams takes about
//     100 ms where it took 10 ms);
//   - in a store that reports a problem (Store.Problems), one more one-event read per
//     command the newest snapshot of a process shown lists as issued, to tell a damaged
//     one (ProcessSummary.Damaged). Problems also reports a full disk, a damaged index
//     and writes stopped until a restart, which cost these reads too, for no damaged
//     record: Problems does not tell them apart from damage.
//
// StatusParked takes its processes from the parked commands of a running Manager with
// a Deliver handler (Parked); on any other Manager it finds none.
func (m *Manager) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	if opts.Limit <= 0 {
		opts.Limit = 100
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	switch opts.Status {
	case "", StatusOpen, StatusCompleted, StatusExpired, StatusParked:
	default:
		return ListPage{}, fmt.Errorf("pm: %s: no status %q: open, completed, expired or parked: %w", m.name, opts.Status, ErrInvalidListing)
	}
	parked := m.parkedByProcess()
	// Only a store that knows of damage (Problems) can hold a damaged command record
	// below a snapshot: a healthy one costs a summary no read of its commands. Problems
	// also lists what is not damage (a full disk, a damaged index, writes stopped), which
	// costs the reads for nothing: Stats.DamagedRecords alone would tell, but Stats
	// starts a pass over the whole index on its first call.
	damage := len(m.store.Problems()) > 0
	keep := func(s ProcessSummary) bool {
		switch {
		case opts.Status == StatusParked && s.Parked == 0,
			opts.Status != "" && opts.Status != StatusParked && s.Status != opts.Status,
			opts.OlderThan > 0 && (s.Created.IsZero() || opts.Now.Sub(s.Created) < opts.OlderThan),
			opts.IdleFor > 0 && (s.LastActivity.IsZero() || opts.Now.Sub(s.LastActivity) < opts.IdleFor):
			return false
		}
		return true
	}
	if opts.ByAge {
		return m.listByAge(ctx, opts, parked, damage, keep)
	}
	var out ListPage
	err := m.eachProcess(ctx, opts.Status, parked, opts.After, func(id string) (bool, error) {
		s, ok, err := m.summary(ctx, id, parked, damage, opts.Hold)
		if err != nil || !ok || !keep(s) {
			return true, err
		}
		if len(out.Processes) == opts.Limit {
			out.Next = out.Processes[opts.Limit-1].ID
			return false, nil
		}
		out.Processes = append(out.Processes, s)
		return true, nil
	})
	return out, err
}

// ErrInvalidListing: a ListOptions that List cannot answer (an unknown status, a Next
// of another order).
var ErrInvalidListing = errors.New("invalid listing")

// listByAge is List with opts.ByAge: the processes that keep accepts, oldest first. It
// reads the first event of every process to order them, then folds them in that
// order until the page is full. Its Next is "<first event's Unix nanoseconds>/<id>"
// of the last process shown.
func (m *Manager) listByAge(ctx context.Context, opts ListOptions, parked map[string]int, damage bool, keep func(ProcessSummary) bool) (ListPage, error) {
	type aged struct {
		at int64 // the first event's timestamp, Unix nanoseconds
		id string
	}
	var after aged
	if opts.After != "" {
		at, id, ok := strings.Cut(opts.After, "/")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			return ListPage{}, fmt.Errorf("pm: %s: %q is not the next of a listing by age: %w", m.name, opts.After, ErrInvalidListing)
		}
		after = aged{n, id}
	}
	var all []aged
	err := m.eachProcess(ctx, opts.Status, parked, "", func(id string) (bool, error) {
		created, ok, err := m.created(ctx, id)
		switch {
		case err != nil:
		case ok && (opts.OlderThan <= 0 || opts.Now.Sub(created) >= opts.OlderThan):
			all = append(all, aged{created.UnixNano(), id})
		case !ok && opts.OlderThan <= 0 && m.isHeld(id):
			all = append(all, aged{heldAge, id}) // held at its first event: it has none
		}
		return true, err
	})
	if err != nil {
		return ListPage{}, err
	}
	order := func(a, b aged) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) }
	slices.SortFunc(all, order)
	start := 0
	if opts.After != "" {
		start, _ = slices.BinarySearchFunc(all, after, func(a, cursor aged) int {
			return cmp.Or(order(a, cursor), -1) // the cursor sorts before: start after it
		})
	}
	var out ListPage
	for _, a := range all[start:] {
		s, ok, err := m.summary(ctx, a.id, parked, damage, opts.Hold)
		if err != nil {
			return ListPage{}, err
		}
		if !ok || !keep(s) {
			continue
		}
		if len(out.Processes) == opts.Limit {
			last := out.Processes[opts.Limit-1]
			at := int64(heldAge)
			if !last.Created.IsZero() {
				at = last.Created.UnixNano()
			}
			out.Next = strconv.FormatInt(at, 10) + "/" + last.ID
			break
		}
		out.Processes = append(out.Processes, s)
	}
	return out, nil
}

// heldAge is where a listing by age puts a process held at its first event, which has
// none: first.
const heldAge = math.MinInt64

// eachProcess calls fn with the id of each process after after, in id order, until
// fn returns false: the processes with a parked command for StatusParked, else every
// process stream of the manager, and the processes the manager holds that have none
// (held at their first event).
func (m *Manager) eachProcess(ctx context.Context, status Status, parked map[string]int, after string, fn func(id string) (bool, error)) error {
	if status == StatusParked {
		ids := make([]string, 0, len(parked))
		for id := range parked {
			if id > after {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			if more, err := fn(id); err != nil || !more {
				return err
			}
		}
		return nil
	}
	prefix := m.name + "$"
	from := ""
	if after != "" {
		from = prefix + after
	}
	held := m.heldAfter(after) // merged in where their ids sort, each once
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := m.store.Streams(prefix, from, streamsPageSize)
		if err != nil {
			return err
		}
		for _, s := range page {
			id := strings.TrimPrefix(s.Name, prefix)
			for len(held) > 0 && held[0] < id {
				if more, err := fn(held[0]); err != nil || !more {
					return err
				}
				held = held[1:]
			}
			alsoHeld := len(held) > 0 && held[0] == id
			if alsoHeld {
				held = held[1:]
			}
			if !alsoHeld && (!s.Exists || checkStoredProcessID(m.name, id) != "") {
				continue // deleted, or not a stream this manager could have written
			}
			if more, err := fn(id); err != nil || !more {
				return err
			}
		}
		if len(page) < streamsPageSize {
			break
		}
		from = page[len(page)-1].Name
	}
	for _, id := range held {
		if more, err := fn(id); err != nil || !more {
			return err
		}
	}
	return nil
}

// created is the timestamp of the first event of process id; ok is false when it has
// none (deleted since it was listed).
func (m *Manager) created(ctx context.Context, id string) (time.Time, bool, error) {
	t, exists, err := m.edgeTime(ctx, m.name+"$"+id, false)
	return t, exists && !t.IsZero(), err
}

// edgeTime is the timestamp of the first event of stream, or the last one (back), that
// is not damaged: the fold passes a damaged fact over (see damagedLink), and so does a
// list. It is zero when there is none; exists is false when the stream does not exist.
func (m *Manager) edgeTime(ctx context.Context, stream string, back bool) (t time.Time, exists bool, err error) {
	opts := pmd.ReadOptions{Limit: 1}
	if back {
		opts.From, opts.Backward = pmd.End, true
	}
	for {
		var damaged *pmd.CorruptError
		for ev, err := range m.store.ReadStream(ctx, stream, opts) {
			if errors.Is(err, pmd.ErrStreamNotFound) {
				return time.Time{}, false, nil
			}
			if errors.As(err, &damaged) && damaged.Stream == stream {
				break
			}
			if err != nil {
				return time.Time{}, false, fmt.Errorf("pm: read %s: %w", stream, err)
			}
			return ev.Timestamp, true, nil
		}
		switch {
		case damaged == nil, back && damaged.Version == 0:
			return time.Time{}, true, nil
		case back:
			opts.From = damaged.Version - 1
		default:
			opts.From = damaged.Version + 1
		}
	}
}

// summary folds process id for its line in a list; ok is false when it has no event
// (deleted since it was listed), unless the manager holds it (held at its first event:
// it shows the panic, Version -1 and no time). damage says that the store reports a
// problem (Problems), damaged records or another: the command records the newest
// snapshot lists as issued are then read, as ProcessPage reads them, and a damaged one
// is counted in Damaged, not in Commands. The fold decodes with hold, when set
// (ListOptions.Hold).
func (m *Manager) summary(ctx context.Context, id string, parked map[string]int, damage bool, hold func(*pmd.Event) (func(), error)) (ProcessSummary, bool, error) {
	var damaged []int64
	e, err := m.foldFor(ctx, id, &damaged, hold)
	if err != nil {
		return ProcessSummary{}, false, err
	}
	l := e.p.ledger()
	if !e.exists {
		if !m.isHeld(id) {
			return ProcessSummary{}, false, nil
		}
		return ProcessSummary{ID: id, Status: l.status(), Version: l.last, Parked: parked[id], Panic: m.panicOf(id, e.p)}, true, nil
	}
	s := ProcessSummary{ID: id, Status: l.status(), Erased: l.erased, Version: l.last, Events: l.links, Commands: l.commands,
		Deadlines: len(l.pending), Parked: parked[id], Panic: m.panicOf(id, e.p), Damaged: len(damaged)}
	if damage && e.snap >= 0 && !l.erased {
		// A read per command would cost a page thousands of reads for long processes:
		// only a store with damage pays it (see List).
		below := ledger{issued: make(map[string]uint64)}
		for k, v := range l.issued {
			if int64(v) <= e.snap {
				below.issued[k] = v
			}
		}
		var lost []int64
		if err := m.readIssued(ctx, id, &below, &lost, func(*pmd.Event) {}); err != nil {
			return ProcessSummary{}, false, err
		}
		s.Commands -= len(lost)
		s.Damaged += len(lost)
	}
	stream := m.name + "$" + id
	for _, at := range []struct {
		t    *time.Time
		back bool
	}{{&s.Created, false}, {&s.LastActivity, true}} {
		t, exists, err := m.edgeTime(ctx, stream, at.back)
		if err != nil || !exists {
			return ProcessSummary{}, false, err
		}
		*at.t = t
	}
	return s, true, nil
}

// parkedByProcess counts the parked commands of each process.
func (m *Manager) parkedByProcess() map[string]int {
	out := make(map[string]int)
	for _, pc := range m.parkedCommands() {
		out[pc.Command.ProcessID]++
	}
	return out
}
