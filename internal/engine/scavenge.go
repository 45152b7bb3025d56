package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pmd-dev/pmd/index"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// ScavengeOptions tunes a scavenge. The zero value is a scavenge at DefaultScavengeRate.
type ScavengeOptions struct {
	// BytesPerSecond bounds how fast segments are read and rewritten, so that the disk
	// keeps serving writers; 0 means DefaultScavengeRate, a negative value no bound.
	BytesPerSecond int64
	// Progress, if set, is called after each segment with the sealed bytes done so far
	// and the sealed bytes in all.
	Progress func(done, total int64)
	// Before, if set, is called once this scavenge holds the right to run, before it
	// syncs the log or reads a segment: work that must not run in two scavenges at once
	// (the store records expiry there). Its error ends the scavenge, returned as it is.
	Before func(ctx context.Context) error
	// Replica says the log is a cluster replica's, whose prefixes other nodes copy to
	// catch up (from a Raft snapshot's position) and then apply the writes after it
	// against: a dead event keeps its record, without its data and metadata, and a dead
	// link stays. A gone record would leave the index built from such a prefix without
	// the event's version, its stream's next version and the event itself, which the
	// prefix's writes saw: its death is decided by a record that may lie past the prefix.
	Replica bool
}

// DefaultScavengeRate is the read rate of a scavenge whose options do not set one.
const DefaultScavengeRate = 128 << 20

// ScavengeResult says what a scavenge did.
type ScavengeResult struct {
	Segments    int   // sealed segments read
	Rewritten   int   // segments rewritten
	Gone        int   // dead events and links removed
	DeadKept    int   // dead events whose record stays, without its data and metadata
	Erased      int   // erased events whose data and metadata were removed
	BytesBefore int64 // the sealed segments' bytes before
	BytesAfter  int64 // and after
	// Quarantines are the quarantines removed because the store erased data (see
	// dropQuarantines).
	Quarantines []string
}

// Freed is the disk bytes the scavenge gave back.
func (r ScavengeResult) Freed() int64 { return r.BytesBefore - r.BytesAfter }

// Scavenge reads every sealed segment of the log and rewrites those that hold bytes of
// dead events (or of links that no stream shows) or data and metadata of erased events,
// without them; a segment with nothing to remove is only read. No position changes. The newest version of every stream that is not deleted stays (an
// event without its data if it is dead), so that an index rebuilt from the log gives the
// stream the same next version; in a replica's log every dead event and link stays so
// (ScavengeOptions.Replica). Each
// segment is swapped atomically (see log.Rewrite): a crash at any moment leaves every
// segment old or new. The log is synced first, NoSync or not, and again before each
// segment's rewrite is swapped in, after its last record was decided, so that no
// rewrite outlives a power cut that the records it carries out do not, those written
// while the scavenge runs included. The newest segment is sealed first if it holds the data of an
// erased event, so that an erasure always leaves the disk; otherwise it is left as it is.
// In a store that erased data, the scavenge first removes the quarantines in the data
// directory (see dropQuarantines). One scavenge runs at a time: another waits for it to
// finish, or for its own ctx to end. A segment with a damaged record is kept as it is
// (log.Rewrite refuses it) and the others are scavenged; the scavenge then fails with
// the damage (a *log.CorruptError in the chain).
func (e *Engine) Scavenge(ctx context.Context, opts ScavengeOptions) (ScavengeResult, error) {
	var res ScavengeResult
	// One scavenge at a time: two would do the same work, each rewriting what the other
	// just rewrote. A second one waits for the first, or for its ctx.
	if err := e.scavenging.lock(ctx); err != nil {
		return res, fmt.Errorf("pmd: scavenge: wait for the scavenge under way: %w", err)
	}
	defer e.scavenging.unlock()
	if opts.Before != nil {
		if err := opts.Before(ctx); err != nil {
			return res, err
		}
	}
	// The records that made events dead or erased (deletions, retention, erasures) must
	// be durable before any segment is rewritten without those events: log.Rewrite syncs
	// what it writes even with NoSync, and a power cut that kept the rewrite but lost the
	// deletion would have removed events no deletion ever removed.
	if err := e.Log.Sync(); err != nil {
		return res, fmt.Errorf("pmd: scavenge: sync the log first: %w", err)
	}
	if err := e.sealErased(ctx); err != nil {
		return res, fmt.Errorf("pmd: scavenge: %w", err)
	}
	q, err := e.dropQuarantines()
	res.Quarantines = q
	if err != nil {
		return res, fmt.Errorf("pmd: scavenge: %w", err)
	}
	segs := e.Log.Segments()
	if len(segs) < 2 {
		return res, nil
	}
	sealed := segs[:len(segs)-1]
	var total, done int64
	for _, s := range sealed {
		total += s.Size
	}
	rate := opts.BytesPerSecond
	if rate == 0 {
		rate = DefaultScavengeRate
	}
	start := time.Now()
	var damaged []error // of the segments a damaged record kept as they were
	pace := func(ctx context.Context, read int64) error {
		if rate < 0 {
			return ctx.Err()
		}
		ahead := time.Duration(float64(done+read)/float64(rate)*float64(time.Second)) - time.Since(start)
		if ahead < time.Millisecond {
			return ctx.Err()
		}
		t := time.NewTimer(ahead) // throttling, not synchronisation: the disk is shared
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, s := range sealed {
		sc := scavenger{x: e.Index, replica: opts.Replica, states: make(map[string]index.StreamState)}
		// One read of the segment's dead marks rather than a lookup per record.
		dead, err := e.Index.DeadIn(nil, s.First, s.First+uint64(s.Count)-1)
		if err != nil {
			return res, fmt.Errorf("pmd: scavenge: %w", err)
		}
		sc.dead = dead
		// The segment's last record is decided once the replacement is written: sync
		// the log before it is swapped in. The records whose effect it carries out (the
		// dead marks read above, the erasures and stream states looked up record by
		// record) may have been written since the sync above, by a deletion, retention,
		// erasure or truncation made while the scavenge runs.
		beforeSwap := func() error {
			if err := e.Log.Sync(); err != nil {
				return fmt.Errorf("sync the log before the swap: %w", err)
			}
			return nil
		}
		r, err := e.Log.Rewrite(ctx, s.First, pmdlog.RewriteOptions{Change: sc.change, Pace: pace, BeforeSwap: beforeSwap})
		if err == nil {
			err = sc.err
		}
		var ce *pmdlog.CorruptError
		if sc.err == nil && errors.As(err, &ce) {
			// A damaged record stops this segment's rewrite, which changed nothing; the
			// other segments go on: one damaged record must not keep every erasure on
			// the disk, scavenge after scavenge.
			damaged = append(damaged, err)
			done += s.Size
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
			continue
		}
		if err != nil {
			return res, fmt.Errorf("pmd: scavenge: %w", err)
		}
		res.Segments++
		res.BytesBefore += r.BytesBefore
		res.BytesAfter += r.BytesAfter
		if r.Replaced > 0 {
			res.Rewritten++
			res.Gone += sc.gone
			res.DeadKept += sc.deadKept
			res.Erased += sc.erased
		}
		done += s.Size
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if res.Rewritten > 0 {
		e.logger.Info("pmd: scavenged the log", "segments", res.Rewritten, "gone", res.Gone, "dead_kept", res.DeadKept, "erased", res.Erased,
			"freed_bytes", res.Freed(), "took", time.Since(start).Round(time.Millisecond))
	}
	if len(damaged) > 0 {
		return res, fmt.Errorf("pmd: scavenge: %d damaged segment(s) kept as they were, with the dead and erased bytes they hold, until pmd repair removes the damage; the other segments were scavenged, freeing %d bytes: %w",
			len(damaged), res.Freed(), errors.Join(damaged...))
	}
	return res, nil
}

// scavengeLock is a mutex whose lock honours a context; the zero value is unlocked.
type scavengeLock struct {
	once sync.Once
	ch   chan struct{} // holds a token while locked
}

func (m *scavengeLock) lock(ctx context.Context) error {
	m.once.Do(func() { m.ch = make(chan struct{}, 1) })
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *scavengeLock) unlock() { <-m.ch }

// sealErased seals the newest segment when it holds the data of an erased event, so that
// an erasure always leaves the disk at the next scavenge.
func (e *Engine) sealErased(ctx context.Context) error {
	if !e.Index.AnyErased() {
		return nil
	}
	segs := e.Log.Segments()
	tail := segs[len(segs)-1]
	if tail.Count == 0 {
		return nil
	}
	errFound := errors.New("found")
	err := e.Log.Scan(ctx, tail.First, func(r pmdlog.Record) error {
		if r.Kind == pmdlog.KindEvent && !r.Erased && e.Index.Erased(r.Event.Stream, r.Event.Version) {
			return errFound
		}
		return nil
	})
	var ce *pmdlog.CorruptError
	switch {
	case errors.Is(err, errFound):
		return e.Log.Seal()
	case errors.As(err, &ce):
		// The records past the damage cannot be told apart: sealed, the segment is
		// scavenged as the sealed ones are, and its damage reported with theirs.
		return e.Log.Seal()
	case err != nil:
		return err
	}
	return nil
}

// quarantinePrefix begins the name of every quarantine in a data directory: the
// directory of the segments Open copied before it cut a torn log end below the index,
// and the file of the bytes pmd repair removed (DefaultQuarantine).
const quarantinePrefix = "quarantine-"

// dropQuarantines removes every quarantine pmd made in the data directory (isQuarantine:
// no other file, whatever its name) when the store has erased data. A quarantine holds log bytes as they were, the data of events erased
// since included, and no scavenge rewrites it: an erasure leaves the disk only if the
// quarantines go too. Deciding which of them hold erased bytes would mean trusting a
// parse of the damaged bytes they were kept for, so all go, each logged. It returns the
// paths removed. A store that never erased anything keeps its quarantines.
func (e *Engine) dropQuarantines() ([]string, error) {
	if !e.Index.AnyErased() {
		return nil, nil
	}
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, ent := range ents {
		if !isQuarantine(ent.Name(), ent.IsDir()) {
			continue
		}
		q := filepath.Join(e.dir, ent.Name())
		if err := os.RemoveAll(q); err != nil {
			return removed, fmt.Errorf("remove the quarantine %s, which may hold erased data: %w", q, err)
		}
		removed = append(removed, q)
		e.logger.Warn("pmd: removed a quarantine: the store erased data, which it may hold", "quarantine", q)
	}
	if len(removed) > 0 {
		if err := SyncFile(e.dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// The UTC times in the names of the quarantines pmd makes: the directory of a cut at
// Open, and the file of a repair (DefaultQuarantine).
const (
	cutQuarantineTime    = "20060102T150405.000000000Z"
	repairQuarantineTime = "20060102T150405Z"
)

// isQuarantine reports whether the entry name of a data directory (a directory if isDir)
// has the shape of a quarantine pmd makes there: a directory quarantine-<UTC time>
// (openCutBelowKeep) or a file quarantine-<UTC time>.bin (DefaultQuarantine), or the file
// a repair writes that one's bytes to before renaming it into place, which a crash of
// the repair leaves (quarantine-<UTC time>.bin.pmd-repair.tmp, log.QuarantineTmpExt). Any other
// name, an operator's copy such as quarantine-X.keep included, is not one.
func isQuarantine(name string, isDir bool) bool {
	t, ok := strings.CutPrefix(name, quarantinePrefix)
	if !ok {
		return false
	}
	layout := cutQuarantineTime
	if !isDir {
		t = strings.TrimSuffix(t, pmdlog.QuarantineTmpExt)
		if t, ok = strings.CutSuffix(t, ".bin"); !ok {
			return false
		}
		layout = repairQuarantineTime
	}
	// The length too: a parse accepts fractional seconds the layout does not have.
	_, err := time.Parse(layout, t)
	return err == nil && len(t) == len(layout)
}

// ScavengeRemoves reports whether the file path is a quarantine that a scavenge of the
// data directory dir removes when the store has erased data (see dropQuarantines).
func ScavengeRemoves(dir, path string) bool {
	d, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	p, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return filepath.Dir(p) == d && isQuarantine(filepath.Base(p), false)
}

// scavenger decides, record by record, what a scavenge keeps of one segment.
type scavenger struct {
	x        *index.Index
	dead     []uint64 // the dead positions in the segment, ascending
	replica  bool     // ScavengeOptions.Replica: no record becomes a gone one
	states   map[string]index.StreamState
	gone     int
	deadKept int   // dead events kept without their data, erased ones too
	erased   int   // events that are not dead, erased
	err      error // the first error of the index: the segment is then kept as it is
}

func (sc *scavenger) change(r *pmdlog.Record) *pmdlog.Record {
	if sc.err != nil {
		return nil
	}
	switch r.Kind {
	case pmdlog.KindEvent:
		_, dead := slices.BinarySearch(sc.dead, r.Position)
		if dead && !sc.replica && sc.removable(r.Event.Stream, r.Event.Version) {
			sc.gone++
			// The id stays taken: an index rebuilt from the scavenged log, or a
			// cluster node's built from a copy of it, refuses it as this one does.
			return &pmdlog.Record{Kind: pmdlog.KindGone, Gone: pmdlog.Gone{ID: r.Event.ID}}
		}
		// A dead event kept for its version is never read again: its data can go too.
		if !r.Erased && (dead || sc.erasedEvent(r.Event.Stream, r.Event.Version)) {
			e := *r
			e.Erased, e.Event.Data, e.Event.Metadata = true, nil, nil
			if dead {
				sc.deadKept++
			} else {
				sc.erased++
			}
			return &e
		}
	case pmdlog.KindLink:
		if sc.replica {
			return nil // no data of its own; its version is its stream's (see Replica)
		}
		st, err := sc.state(r.Link.Stream)
		if err != nil {
			return nil
		}
		if r.Link.Version >= st.First && r.Link.Version < st.Next {
			return nil // the stream shows it
		}
		if sc.removable(r.Link.Stream, r.Link.Version) {
			sc.gone++
			// No id: the linked event's record, or its gone record, holds it.
			return &pmdlog.Record{Kind: pmdlog.KindGone}
		}
	}
	return nil
}

// removable reports whether the record of version of stream may go: not when it is the
// stream's newest version and the stream is not deleted, since a replay takes a stream's
// next version from its records (a deletion names it itself).
func (sc *scavenger) removable(stream string, version uint64) bool {
	st, err := sc.state(stream)
	if err != nil {
		return false
	}
	return !st.Exists || version+1 < st.Next
}

// erasedEvent reports whether the event at version of stream is erased. An erase mark
// the index cannot read stops the segment's rewrite (sc.err) rather than strip, for
// good, the data of events the mark may not cover.
func (sc *scavenger) erasedEvent(stream string, version uint64) bool {
	erased, err := sc.x.ErasedErr(stream, version)
	if err != nil {
		sc.err = err
		return false
	}
	return erased
}

func (sc *scavenger) state(stream string) (index.StreamState, error) {
	if st, ok := sc.states[stream]; ok {
		return st, nil
	}
	st, err := sc.x.Stream(stream)
	if err != nil {
		sc.err = err
		return st, err
	}
	sc.states[stream] = st
	return st, nil
}
