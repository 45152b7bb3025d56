package pmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// Retention says which events of a stream reads still show (contract section 14). A zero
// field is not set. Events outside it stop being read from the stream at once; an event
// that no stream shows any more is dead: it leaves $all, category and type reads and is
// not found by its id, and a scavenge removes its bytes.
type Retention struct {
	// MaxAge hides events older than this.
	MaxAge time.Duration
	// MaxCount shows only the newest MaxCount versions.
	MaxCount uint64
	// TruncateBefore hides the versions below it.
	TruncateBefore uint64
}

// SetRetention sets the retention of stream, replacing the settings it had. Hiding is
// final: a setting that shows more than before does not bring back what was hidden. A
// TruncateBefore past the stream's next version is refused (ErrInvalidArgument, naming
// the next version): it would hide every event appended until the stream got there.
// Settings that hide anything are refused for a stream an owner keeps whole (Keep:
// *KeptWholeError, matching ErrKeptWhole).
func (s *Store) SetRetention(ctx context.Context, stream string, r Retention) error {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	return s.setRetention(ctx, stream, r)
}

// ErrRetentionChanged: SetRetentionIf found other settings than it expected.
var ErrRetentionChanged = errors.New("retention settings changed")

// SetRetentionIf sets the retention of stream to r, as SetRetention does, if its
// settings are still expected (as Retention returned them); otherwise it changes
// nothing and fails with ErrRetentionChanged. A read-modify-write of the settings (one
// field changed, the others as they are) uses it not to overwrite a change made since
// its read: on ErrRetentionChanged it reads them again. SetRetention and SetRetentionIf
// are serialised on a Store, so no change made through this Store comes between the
// check and the write; one made through another node of a cluster can.
func (s *Store) SetRetentionIf(ctx context.Context, stream string, expected, r Retention) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	cur, err := s.Retention(stream)
	if err != nil {
		return err
	}
	if cur != expected {
		return fmt.Errorf("%w: stream %q has %+v, not %+v", ErrRetentionChanged, stream, cur, expected)
	}
	return s.setRetention(ctx, stream, r)
}

func (s *Store) setRetention(ctx context.Context, stream string, r Retention) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	if r.MaxAge < 0 {
		return invalid("max_age", "must not be negative, got %s", r.MaxAge)
	}
	if err := s.checkKept(stream, r); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{stream: stream, retain: &pmdlog.Retention{
		Stream: stream, MaxAge: int64(r.MaxAge), MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore,
	}})
	return err
}

// Retention returns the retention settings of stream (zero if it has none).
func (s *Store) Retention(stream string) (Retention, error) {
	if err := checkName("stream", stream); err != nil {
		return Retention{}, err
	}
	if err := s.visible(context.Background()); err != nil {
		return Retention{}, err
	}
	st, err := s.idx.Stream(stream)
	if err != nil {
		return Retention{}, s.storeErr(err)
	}
	r := st.Retention
	return Retention{MaxAge: time.Duration(r.MaxAge), MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore}, nil
}

// EraseStream erases the data and metadata of every event appended to stream so far: at
// once for every read (they read with Erased set, and nil Data and Metadata; their id,
// type, position, stream, version and timestamp stay) and from the disk at the next
// scavenge of the segments that hold them. The events stay in their streams. The erasure
// is a record in the log, so it survives a crash. Erasing a stream never written does
// nothing.
func (s *Store) EraseStream(ctx context.Context, stream string) error {
	if err := checkWritable(stream); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{stream: stream, erase: true})
	return err
}

// Erased reports whether an EraseStream of stream covers version: true for every
// version stream had assigned when it was last erased, false for those assigned since.
// For the version of an event appended to stream, that says its data and metadata are
// gone, whatever its record still holds. A damaged record (a *CorruptError naming the
// stream and version) cannot say so when read; the index knows it without reading the
// record.
//
// For the version of a link it says only that stream was erased after the link: an
// erasure erases the events appended to the stream, not those linked into it, and the
// event a link shows reads erased (Event.Erased) exactly when Erased holds for its own
// stream and version (Event.Stream, Event.Version), which is what to ask about it.
// A stream EraseStream refuses ($all) is refused here too, and a closed store answers
// ErrClosed as its reads do.
func (s *Store) Erased(stream string, version uint64) (bool, error) {
	if err := checkWritable(stream); err != nil {
		return false, err
	}
	if s.closed() {
		return false, ErrClosed
	}
	if err := s.visible(context.Background()); err != nil {
		return false, err
	}
	return s.idx.Erased(stream, version), nil
}

// Erasures counts the erasures this store has applied since it was opened: those of its
// own EraseStream calls, and in a cluster's replica those replicated or copied from the
// other nodes, on every node that applies them. It moves once an erasure is seen by
// every read, so a count read before a read and found unchanged afterwards says that
// nothing the read served has been erased since: a cache of what was read needs to look
// for erased events only when the count has moved. It starts at zero at each Open.
func (s *Store) Erasures() uint64 { return s.idx.Erasures() }

// ScavengeOptions tunes Scavenge. The zero value scavenges at engine.DefaultScavengeRate
// (128 MiB/s).
type ScavengeOptions struct {
	// BytesPerSecond bounds how fast segments are read and rewritten; 0 means the
	// default, a negative value no bound.
	BytesPerSecond int64
	// Progress, if set, is called after each segment with the bytes done and in all.
	Progress func(done, total int64)
}

// ScavengeResult says what Scavenge did.
type ScavengeResult struct {
	Expired     int   // streams whose events past their max age were found and recorded
	Segments    int   // sealed segments read
	Rewritten   int   // segments rewritten
	Gone        int   // events and links removed (none in a cluster's replica, see Scavenge)
	DeadKept    int   // dead events whose record stays, without data and metadata (see Scavenge)
	Erased      int   // erased events, not dead, whose data and metadata were removed
	BytesBefore int64 // the bytes of the sealed segments before
	BytesAfter  int64 // and after
	// ExpirySkipped says no expiry was recorded because the log is a cluster replica's
	// and the store is not running as one (see Scavenge).
	ExpirySkipped bool
	// Quarantines are the paths of the quarantines removed from the data directory
	// because the store has erased data, which they may hold (see Scavenge): an
	// Open-cut quarantine may hold acknowledged records that exist nowhere else.
	Quarantines []string
}

// Freed is the disk bytes Scavenge gave back.
func (r ScavengeResult) Freed() int64 { return r.BytesBefore - r.BytesAfter }

// Scavenge reclaims the disk that dead and erased events hold. First it records, for
// every stream with a max age, how far its events have expired (a retention record, so
// that the events die in the log's order, the same on every replay). Then it rewrites
// every sealed segment without the bytes of dead events and links, and without the data
// of erased ones; positions never change, and each segment is swapped atomically, so a
// crash at any moment loses nothing. It runs alongside reads and writes, throttled by
// opts. The newest segment is not rewritten until it is sealed, after SegmentSize more
// bytes of writes. One scavenge runs at a time, its expiry included: another waits for
// it to finish, or for its own ctx to end.
//
// In a store that has ever erased data, Scavenge also removes the quarantines pmd made
// in the data directory (DIR/quarantine-<UTC time>/ of a cut at Open, and
// DIR/quarantine-<UTC time>.bin of pmd repair), which may hold the erased bytes, and
// names them in the result (Quarantines). Copy a quarantine out of the data directory
// to keep it.
//
// In a replica of a cluster (SetReplicator) the retention records are writes like any
// other: where they are refused as unavailable (a follower, or a leader without a quorum)
// Scavenge goes on to rewrite this replica's segments, and the records come with the
// leader's next scavenge, by replication.
//
// A store opened on a cluster replica's data directory without SetReplicator (pmd
// scavenge DIR on a stopped node; the directory holds Raft state, or its log a Raft
// index) records no expiry, and says so (ExpirySkipped): a
// record written there would take a position Raft never agreed on, and carry no Raft
// index, so that the node would restart at Applied 0 and differ from the other nodes.
// It still rewrites the segments, as a follower's scavenge does.
//
// In a replica, with SetReplicator or on its data directory, a dead event keeps its
// record without its data and metadata (as an erased one does) and a dead link stays,
// where a store of its own leaves a gone record: a node catching up copies a prefix
// of another node's log, up to a Raft snapshot's position, and applies the writes
// after it against that prefix. An event whose death came after the prefix was still
// in its stream there: gone, its stream's next version and the event a link names
// would be missing, and the node would write those writes differently (other
// versions, refusals), at other positions than every other node.
//
// The result counts the dead events whose record stays, without its data and metadata,
// in DeadKept, erased or not: a replica's, and a dead event that is the newest version
// of a stream not deleted, which any store keeps for the stream's next version. Erased
// counts the erased events that are not dead.
func (s *Store) Scavenge(ctx context.Context, opts ScavengeOptions) (ScavengeResult, error) {
	var res ScavengeResult
	repl := s.repl.Load()
	if repl == nil {
		applied, _, err := s.lastApplied()
		if err != nil {
			return res, s.storeErr(err)
		}
		res.ExpirySkipped = applied > 0 || s.eng.InCluster()
	}
	replica := repl != nil || res.ExpirySkipped
	// The expiry runs under the engine's scavenge lock, as the rest does: two scavenges
	// at once would both record it.
	var beforeErr, expireDamage error
	before := func(ctx context.Context) error {
		if !res.ExpirySkipped {
			expired, damage, err := s.expire(ctx)
			res.Expired, expireDamage = expired, damage
			if err != nil && (repl == nil || !errors.Is(err, ErrUnavailable)) {
				beforeErr = err
				return err
			}
		}
		// The rewrite reads the dead marks from the index, which takes a write after
		// the applier answered it: without this wait the events killed by the expiry,
		// or by a deletion acknowledged before the scavenge began, would stay on the
		// disk until the next scavenge (on a replica's data directory, which records no
		// expiry, too).
		if err := s.visible(ctx); err != nil {
			beforeErr = err
			return err
		}
		return nil
	}
	r, err := s.eng.Scavenge(ctx, engine.ScavengeOptions{BytesPerSecond: opts.BytesPerSecond, Progress: opts.Progress, Before: before, Replica: replica})
	if beforeErr != nil {
		return res, beforeErr
	}
	res.Segments, res.Rewritten, res.Gone, res.DeadKept, res.Erased = r.Segments, r.Rewritten, r.Gone, r.DeadKept, r.Erased
	res.BytesBefore, res.BytesAfter, res.Quarantines = r.BytesBefore, r.BytesAfter, r.Quarantines
	s.scavenged.Add(uint64(max(res.Freed(), 0))) // what it freed before an error is freed too
	if err != nil {
		err = s.storeErr(err)
	}
	if err = errors.Join(expireDamage, err); err != nil {
		return res, err
	}
	s.scavenges.Add(1)
	return res, nil
}

// expire writes a retention record for every stream whose oldest visible events are
// past its max age, naming the version below which they are. A SetRetention may come
// between the page read here and the record: plan then writes the record with the
// stream's settings as they are, or drops it if the max age it was found with changed.
//
// A damaged event where a stream's expiry reads its timestamp stops that stream's expiry
// below it (the events before it were read, and are past the max age), not the others',
// nor the scavenge: the damage is returned apart (damage, ErrCorrupt, joined for each
// stream), for Scavenge to report once it has rewritten the segments. It used to stop
// every scavenge before any segment, until pmd repair, with the erased data kept.
func (s *Store) expire(ctx context.Context) (n int, damage, err error) {
	// The settings of every write acknowledged so far: the applier answers a batch's
	// writers before it indexes it, and the streams are read from the index.
	if err := s.visible(ctx); err != nil {
		return 0, nil, err
	}
	var damaged []error
	for after := ""; ; {
		page, err := s.idx.StreamNames("", after, 1000)
		if err != nil {
			return n, errors.Join(damaged...), s.storeErr(err)
		}
		for _, info := range page {
			ret := info.Retention
			if ret.MaxAge == 0 || !info.Exists || info.First >= info.Next {
				continue
			}
			before, err := s.expiredBefore(ctx, info.Name, info.First, info.Next)
			var ce *CorruptError
			if errors.As(err, &ce) {
				// The read skipped the expired events below the damaged one: they
				// expire; the damaged one and those after it wait for a repair.
				before = info.First
				if ce.Stream == info.Name && ce.Version > info.First {
					before = ce.Version
				}
				damaged = append(damaged, fmt.Errorf("pmd: scavenge: stream %q: its events past its max age from version %d on stay until pmd repair removes the damage: %w",
					info.Name, before, err))
				err = nil
			}
			if err != nil {
				return n, errors.Join(damaged...), err
			}
			if before <= info.First {
				continue
			}
			res, err := s.submit(ctx, &request{stream: info.Name, retain: &pmdlog.Retention{
				Stream: info.Name, MaxAge: ret.MaxAge, MaxCount: ret.MaxCount,
				TruncateBefore: ret.TruncateBefore, ExpiredBefore: before,
			}})
			if err != nil {
				return n, errors.Join(damaged...), err
			}
			if res.LastPosition > 0 { // else dropped: the stream's max age changed since
				n++
			}
		}
		if len(page) < 1000 {
			return n, errors.Join(damaged...), nil
		}
		after = page[len(page)-1].Name
	}
}

// expiredBefore returns the first version of stream in [from, next) whose event is not
// past maxAge: the versions before it have expired. A stream read skips expired events,
// so it is the first version the read yields. A stream deleted since expire read its
// state has nothing left to expire (from): its deletion must not fail the scavenge.
func (s *Store) expiredBefore(ctx context.Context, stream string, from, next uint64) (uint64, error) {
	for ev, err := range s.ReadStream(ctx, stream, ReadOptions{From: from, Limit: 1}) {
		if errors.Is(err, ErrStreamNotFound) {
			return from, nil
		}
		if err != nil {
			return from, err
		}
		return ev.Version, nil
	}
	return next, nil
}
