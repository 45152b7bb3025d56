package pm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/pmd-dev/pmd"
)

// readPassing reads stream as ReadStream does with opts, but goes on past a damaged
// record of it: it yields the *pmd.CorruptError, then the records after it (below it,
// reading backward), for the caller to pass over (continue) or stop at (break). A
// damaged record counts towards opts.Limit. The views of a process read its stream so,
// so that one bad record does not keep an operator from looking at the process.
func readPassing(ctx context.Context, store *pmd.Store, stream string, opts pmd.ReadOptions) iter.Seq2[pmd.Event, error] {
	return func(yield func(pmd.Event, error) bool) {
		for {
			var damaged *pmd.CorruptError
			n := 0
			for e, err := range store.ReadStream(ctx, stream, opts) {
				if ce := damageIn(err, stream); ce != nil {
					damaged = ce
					break
				}
				if !yield(e, err) || err != nil {
					return
				}
				n++
			}
			if damaged == nil || !yield(pmd.Event{}, damaged) {
				return
			}
			if n++; opts.Limit > 0 {
				if n >= opts.Limit {
					return
				}
				opts.Limit -= n
			}
			if !opts.Backward {
				opts.From = damaged.Version + 1
				continue
			}
			if damaged.Version == 0 {
				return
			}
			opts.From = damaged.Version - 1
		}
	}
}

// damageIn is the damage err reports of a record of stream, nil if it reports none.
func damageIn(err error, stream string) *pmd.CorruptError {
	if ce := (*pmd.CorruptError)(nil); errors.As(err, &ce) && ce.Stream == stream {
		return ce
	}
	return nil
}

// passOver folds into l, the ledger of process pid being folded for a view, the damaged
// record ce of its stream, and notes its version in damaged: a linked fact is counted
// as linked (see damagedLink), a record of the runtime's own that the store says was
// erased as an erased record (erasedDamage), any other only as the version it took,
// which the view then lacks (a command, a deadline: what it said is unknown until
// a repair). Each damaged record is logged once, a linked fact as an own record: the
// browser asks for the same view again and again. Run, by contrast, stops at a damaged
// record of the runtime's own (see fold).
func (m *Manager) passOver(ctx context.Context, pid string, l *ledger, ce *pmd.CorruptError, damaged *[]int64) error {
	link, err := m.viewedLink(ctx, pid, ce)
	if err != nil {
		return err
	}
	*damaged = append(*damaged, int64(ce.Version))
	if link {
		l.skipLink(int64(ce.Version), ce.Position)
		return nil
	}
	l.last = int64(ce.Version)
	if l.first < 0 {
		l.first = l.last
	}
	m.logOwnDamage(pid, ce)
	return m.erasedDamage(l, ce)
}

// linkedFact, as a value of damagedViewed, says that the damaged record is a linked
// fact (damagedLink), which was logged as such.
type linkedFact struct{}

// viewedLink reports whether ce, the damage of a record of the stream of process pid
// that a view meets, is that of a linked fact (damagedLink, which logs it). A fact so
// found is kept in damagedViewed, so that the next views neither log it again nor read
// the category to tell it from an own record: the damage stays until a repair.
func (m *Manager) viewedLink(ctx context.Context, pid string, ce *pmd.CorruptError) (bool, error) {
	key := damagedRecord{ce.Stream, ce.Version, ce.Position}
	if v, ok := m.damagedViewed.Load(key); ok {
		_, link := v.(linkedFact)
		return link, nil
	}
	link, err := m.damagedLink(ctx, pid, ce)
	if err != nil || link == nil {
		return false, err
	}
	m.damagedViewed.Store(key, linkedFact{})
	return true, nil
}

// logOwnDamage logs ce, the damage of a record of the runtime's own in the stream of
// process pid that a view passed over, unless it was logged already.
func (m *Manager) logOwnDamage(pid string, ce *pmd.CorruptError) {
	key := damagedRecord{ce.Stream, ce.Version, ce.Position}
	if _, logged := m.damagedViewed.LoadOrStore(key, true); !logged {
		m.logger.Error("pm: a process is shown without a damaged record of the runtime's own; Run stops at it until a repair",
			"manager", m.name, "process", pid, "version", ce.Version, "position", ce.Position, "err", ce)
	}
}

// damagedRecord names a damaged record of a process stream a view passed over.
type damagedRecord struct {
	stream            string
	version, position uint64
}

// sortedVersions is versions sorted, without duplicates.
func sortedVersions(versions []int64) []int64 {
	slices.Sort(versions)
	return slices.Compact(versions)
}

// erasedDamage marks l, the ledger of a process being folded for a view, erased if the
// damaged record ce of the runtime's own was erased (Store.Erased): the fold cannot read
// it erased, as it reads any other erased record, and when it is the first record of
// the runtime's own, the one every erasure erases, the view would otherwise show a
// process whose stream was erased as not erased, with the state the erasure was for.
// Its type is unknown, so it counts as neither a command nor a DeadlineFired
// (erasedStatus).
func (m *Manager) erasedDamage(l *ledger, ce *pmd.CorruptError) error {
	if l.erased {
		return nil
	}
	erased, err := m.store.Erased(ce.Stream, ce.Version)
	if err != nil {
		return fmt.Errorf("pm: %s: %w", ce.Stream, err)
	}
	if erased {
		l.erased, l.completed = true, time.Time{}
		clear(l.pending)
	}
	return nil
}
