package pm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// CommandInfo says where a command of a page of a process (ProcessPage) stands, from
// every delivery record of it, shown or not.
type CommandInfo struct {
	// Version is the version of the command's record in the process stream: the
	// commands of a page are in version order, the order they were issued.
	Version int64
	// Delivered says a delivery record of it says it was delivered.
	Delivered bool
	// Settled is OutcomeDelivered or OutcomeSkipped, the first of them recorded (nothing
	// follows either), "" if neither was.
	Settled string
	// Last is the outcome of its last delivery record, "" if none.
	Last string
	// AttemptsNext is where the delivery records of it that the page leaves out start:
	// the PageOptions.AttemptsFrom of a page that shows them; -1 when the page shows
	// every one of them from its AttemptsFrom on.
	AttemptsNext int64
}

// commandOverhead and attemptOverhead are about what a command and a delivery record
// take in JSON beyond their data and error: ids, times and the names of their fields.
const (
	commandOverhead = 200
	attemptOverhead = 100
)

// attemptSize is about what d takes in JSON: its error as JSON writes it, escaped (a
// "<" takes 6 bytes), not as long as it is.
func attemptSize(d *Delivery) int { return jsonSize(d.Err) + attemptOverhead }

// commandPage is the page of the commands of a process that ProcessPage shows.
type commandPage struct {
	commands   []Command
	info       []CommandInfo
	deliveries [][]Delivery // of commands[i], shown
	sizes      []int        // of commands[i] and its deliveries shown
	releases   []func()     // give back what PageOptions.Hold holds for commands[i] and its deliveries shown
	total      int          // sum of sizes
	next       int64        // CommandsNext
	last       int64        // the version of the last record of the deliveries stream, -1 for none
}

// drop leaves the last command of the page to the next page.
func (cp *commandPage) drop() {
	n := len(cp.commands) - 1
	cp.next = cp.info[n].Version
	cp.total -= cp.sizes[n]
	cp.commands[n], cp.deliveries[n] = Command{}, nil // for the collector
	cp.releases[n]()
	cp.commands, cp.info, cp.deliveries, cp.sizes, cp.releases = cp.commands[:n], cp.info[:n], cp.deliveries[:n], cp.sizes[:n], cp.releases[:n]
}

// commandPage reads the page of the commands of process id (l its ledger) that o
// selects: those issued at versions from o.CommandsFrom on, at most o.CommandsLimit
// (0 means 100), each with its delivery records from o.AttemptsFrom on, at most
// o.AttemptsLimit of them (0 means 100), and with o.PageBytes set, only as many as fit
// in half of it with their data and records, about (always one command, and its first
// record shown). It reads one record per command of the page and the deliveries stream
// once, holding only what the page shows. A damaged command record is passed over, its
// version added to damaged (readIssued).
func (m *Manager) commandPage(ctx context.Context, id string, l *ledger, o PageOptions, damaged *[]int64) (commandPage, error) {
	cp := commandPage{next: -1, last: -1}
	limit := o.CommandsLimit
	if limit <= 0 {
		limit = 100
	}
	budget := o.PageBytes / 2
	stream := m.name + "$" + id
	t, err := m.trustNow(ctx)
	if err != nil {
		return cp, err
	}
	versions := slices.Sorted(maps.Values(l.issued))
	start, _ := slices.BinarySearch(versions, uint64(max(o.CommandsFrom, 0)))
	for _, v := range versions[start:] {
		if len(cp.commands) == limit {
			cp.next = int64(v)
			break
		}
		for ev, err := range readHeld(ctx, m.store, stream, pmd.ReadOptions{From: v, Limit: 1}, o.Hold) {
			if ce := damageIn(err, stream); ce != nil {
				*damaged = append(*damaged, int64(ce.Version))
				m.logOwnDamage(id, ce)
				break
			}
			if err != nil {
				return cp, fmt.Errorf("pm: read %s: %w", stream, err)
			}
			c, ok := commandOf(t, stream, id, &ev.Event)
			if !ok {
				ev.release()
				continue
			}
			n := jsonSize(c.Data) + len(c.Type) + commandOverhead
			cp.commands = append(cp.commands, c)
			cp.info = append(cp.info, CommandInfo{Version: int64(ev.Version), AttemptsNext: -1})
			cp.deliveries = append(cp.deliveries, nil)
			cp.sizes = append(cp.sizes, n)
			cp.releases = append(cp.releases, ev.release)
			cp.total += n
		}
		if budget > 0 && cp.total > budget && len(cp.commands) > 1 {
			cp.drop()
			break
		}
	}
	return cp, m.pageDeliveries(ctx, id, t, &cp, o, budget)
}

// pageDeliveries reads the deliveries stream of process id for the commands of cp:
// where each stands, from every record of it, and the records of it to show, from
// o.AttemptsFrom on, at most o.AttemptsLimit (0 means 100) and within budget (0: no
// bound), which leaves the last commands to the next page while it has more than one.
// It sets cp.last to the version of the stream's last record.
func (m *Manager) pageDeliveries(ctx context.Context, id string, t *trust, cp *commandPage, o PageOptions, budget int) error {
	stream := deliveriesStream(m.name, id)
	if !fits(stream) {
		return nil // a process an earlier version took: it has none (checkID)
	}
	limit := o.AttemptsLimit
	if limit <= 0 {
		limit = 100
	}
	at := make(map[uuid.UUID]int, len(cp.commands))
	for i, c := range cp.commands {
		at[c.ID] = i
	}
	// Each record is decoded with o.Hold, when set, and given back unless shown: its
	// error, a receiver's answer, may be long.
	for he, err := range holding(m.store.ReadStream(ctx, stream, pmd.ReadOptions{Encoded: o.Hold != nil}), o.Hold) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("pm: read %s: %w", stream, err)
		}
		e := &he.Event
		cp.last = int64(e.Version)
		d, ok := deliveryOf(e)
		if !ok || !t.delivery(e) {
			he.release()
			continue
		}
		i, ok := at[d.CommandID]
		if !ok || i >= len(cp.commands) {
			he.release()
			continue // not on the page, or left to the next one
		}
		info := &cp.info[i]
		info.Delivered = info.Delivered || d.Delivered()
		if info.Settled == "" && (d.Outcome == OutcomeDelivered || d.Outcome == OutcomeSkipped) {
			info.Settled = d.Outcome
		}
		info.Last = d.Outcome
		if int64(e.Version) < o.AttemptsFrom || info.AttemptsNext >= 0 {
			he.release()
			continue
		}
		n := attemptSize(&d)
		for budget > 0 && cp.total+n > budget && len(cp.commands) > 1 && len(cp.commands) > i {
			cp.drop()
		}
		if i >= len(cp.commands) {
			he.release()
			continue
		}
		if len(cp.deliveries[i]) == limit || (budget > 0 && cp.total+n > budget && len(cp.deliveries[i]) > 0) {
			info.AttemptsNext = int64(e.Version)
			he.release()
			continue
		}
		cp.deliveries[i] = append(cp.deliveries[i], d)
		cp.sizes[i] += n
		cp.total += n
		// The record is held as long as the command it is shown with (drop).
		command, record := cp.releases[i], he.release
		cp.releases[i] = func() { command(); record() }
	}
	return nil
}
