package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// raftish stands in for the cluster: it numbers each replicated write as a Raft log
// would and keeps the entries, for the test to apply them to replicas.
type raftish struct {
	mu      sync.Mutex
	entries []pmd.ReplicatedWrite
}

func (r *raftish) fn(ctx context.Context, write []byte) (pmd.WriteResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, pmd.ReplicatedWrite{Index: uint64(len(r.entries)) + 1, Timestamp: 1e18 + int64(len(r.entries)), Write: write})
	return pmd.WriteResult{}, errQueued
}

var errQueued = errors.New("queued")

func allEvents(t *testing.T, s *pmd.Store) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadAll(context.Background(), pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestReplicasAgree applies the same entries to two stores and finds the same events,
// the same winner of two writes with one expected version, the leader's timestamps, and
// that a restart skips what the log already holds.
func TestReplicasAgree(t *testing.T) {
	ctx := context.Background()
	log := &raftish{}
	open := func(dir string) *pmd.Store {
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetReplicator(log.fn); err != nil {
			t.Fatal(err)
		}
		return s
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := open(dirA), open(dirB)
	for i := range 5 {
		ev := pmd.EventData{Type: "T", Data: map[string]any{"i": i}}
		if _, err := a.Append(ctx, "s", pmd.NoStream, ev); !errors.Is(err, errQueued) {
			t.Fatalf("append through the replicator: %v", err)
		}
	}
	if err := b.DeleteStream(ctx, "s", pmd.Any); !errors.Is(err, errQueued) {
		t.Fatalf("delete through the replicator: %v", err)
	}
	_, _ = a.Append(ctx, "s", pmd.NoStream, pmd.EventData{Type: "U"})
	if a.LastPosition() != 0 {
		t.Fatalf("a replica wrote without Raft: last position %d", a.LastPosition())
	}
	apply := func(s *pmd.Store, ws []pmd.ReplicatedWrite) []pmd.Outcome {
		return s.ApplyWrites(ctx, ws)
	}
	outA := apply(a, log.entries[:3])
	outA = append(outA, apply(a, log.entries[3:])...)
	outB := apply(b, log.entries)
	won := 0
	for i := range outA {
		if (outA[i].Err == nil) != (outB[i].Err == nil) || !reflect.DeepEqual(outA[i].Result, outB[i].Result) {
			t.Fatalf("entry %d: a got %+v, b got %+v", i+1, outA[i], outB[i])
		}
		if i < 5 && outA[i].Err == nil {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d of 5 appends with no_stream won, want 1", won)
	}
	evA, evB := allEvents(t, a), allEvents(t, b)
	if !reflect.DeepEqual(evA, evB) || len(evA) != 1 {
		t.Fatalf("replicas differ or hold %d events, want 1:\n%+v\n%+v", len(evA), evA, evB)
	}
	if got := evA[0].Timestamp.UnixNano(); got != log.entries[6].Timestamp {
		t.Fatalf("timestamp %d, want the leader's %d", got, log.entries[6].Timestamp)
	}
	if a.Applied() != 7 {
		t.Fatalf("Applied = %d, want 7", a.Applied())
	}
	a.Close()
	a = open(dirA)
	defer a.Close()
	if a.Applied() != 7 {
		t.Fatalf("after a restart Applied = %d, want 7", a.Applied())
	}
	for i, o := range apply(a, log.entries) {
		if !o.Skipped {
			t.Fatalf("entry %d applied again after a restart: %+v", i+1, o)
		}
	}
	if !reflect.DeepEqual(allEvents(t, a), evB) {
		t.Fatal("a restart changed the replica")
	}

	// A third replica catches up by copying the records, then applies the next entry.
	c := open(t.TempDir())
	defer c.Close()
	var recs []pmdlog.Record
	if err := a.ScanRecords(ctx, 1, a.LastPosition(), func(r *pmdlog.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.CopyRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if c.Applied() != 7 {
		t.Fatalf("after a copy Applied = %d, want 7", c.Applied())
	}
	_, _ = c.Append(ctx, "s", pmd.AtVersion(1), pmd.EventData{Type: "V"})
	next := log.entries[len(log.entries)-1:]
	for _, s := range []*pmd.Store{a, b, c} {
		if out := apply(s, next); out[0].Err != nil {
			t.Fatalf("the entry after the copy: %v", out[0].Err)
		}
	}
	if got, want := allEvents(t, c), allEvents(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("the copy differs:\n%+v\n%+v", got, want)
	}
	b.Close()
}

// FuzzApplyWrites feeds arbitrary bytes as replicated writes: ApplyWrites refuses what does
// not decode, writes nothing for it, and never panics; a valid entry after it applies.
func FuzzApplyWrites(f *testing.F) {
	log := &raftish{}
	seedStore, err := pmd.Open(f.TempDir(), pmd.Options{NoSync: true, NoScrub: true})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := seedStore.SetReplicator(log.fn); err != nil {
		f.Fatal(err)
	}
	_, _ = seedStore.Append(context.Background(), "s", pmd.NoStream, pmd.EventData{Type: "T", Data: map[string]any{"k": 1}})
	_ = seedStore.DeleteStream(context.Background(), "s", pmd.Any)
	seedStore.Close()
	for _, e := range log.entries {
		f.Add(e.Write)
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.SetReplicator(log.fn); err != nil {
			t.Fatal(err)
		}
		out := s.ApplyWrites(context.Background(), []pmd.ReplicatedWrite{{Index: 1, Timestamp: 1, Write: b}, log.entries[0]})
		if out[0].Err != nil && s.Applied() > 0 && out[1].Err == nil && s.Applied() != log.entries[0].Index {
			t.Fatalf("a refused entry left Applied at %d", s.Applied())
		}
		if out[0].Err != nil && s.LastPosition() > 1 {
			t.Fatalf("a refused entry wrote: last position %d", s.LastPosition())
		}
	})
}

// TestFollowerScavenges: in a replica whose writes are refused as unavailable (a follower,
// or a leader without a quorum), a scavenge cannot write the expiry records of streams
// with a max age, but still rewrites the replica's own segments: the dead events keep
// their records without their data (a replica leaves no gone record:
// TestCopyOfAScavengedReplicaPrefix).
func TestFollowerScavenges(t *testing.T) {
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 8 << 10}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 200 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%4), pmd.Any, ev("Placed", "pad", strings.Repeat("x", 100), "i", i))
	}
	if err := s.DeleteStream(ctx, "Order$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention(ctx, "Order$2", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	for i := range 60 { // seal what came before
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", strings.Repeat("f", 200), "i", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = pmd.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		return pmd.WriteResult{}, &pmd.UnavailableError{Cause: errors.New("not the leader")}
	}); err != nil {
		t.Fatal(err)
	}
	before := allEvents(t, s)
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil {
		t.Fatalf("a follower's scavenge: %v", err)
	}
	if res.Expired != 0 || res.Gone != 0 || res.DeadKept != 50 || res.Erased != 0 || res.Freed() <= 0 {
		t.Fatalf("a follower's scavenge: %+v; want no expiry written, the deleted stream's 50 events kept without their data, nothing gone or erased", res)
	}
	if after := allEvents(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("reads answer differently after a follower's scavenge")
	}
}

// TestReplicaLosesItsUnsyncedTail: a replica's log writes are not fsynced, since Raft's
// log holds the entries; the store syncs at each snapshot (Sync). A power cut that takes
// the store's tail after that loses applied writes: Raft applies again every entry after
// its snapshot, the store skips those it still holds (Applied) and writes the others, and
// it ends with every write it had acknowledged, with the same outcome and at the same
// position, like a replica that lost nothing.
func TestReplicaLosesItsUnsyncedTail(t *testing.T) {
	ctx := context.Background()
	rl := &raftish{}
	open := func(dir string) *pmd.Store {
		t.Helper()
		// Syncing is on: a replica's writes skip it on their own.
		s, err := pmd.Open(dir, pmd.Options{NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetReplicator(rl.fn); err != nil {
			t.Fatal(err)
		}
		return s
	}
	dir := t.TempDir()
	s := open(dir)
	for i := range 60 {
		stream, expect := fmt.Sprintf("R$%d", i%6), pmd.Any
		if i%10 == 4 || i%10 == 5 {
			// Two writes that expect no stream: the first wins, the second is refused.
			stream, expect = fmt.Sprintf("Once$%d", i/10), pmd.NoStream
		}
		if _, err := s.Append(ctx, stream, expect, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); !errors.Is(err, errQueued) {
			t.Fatalf("append through the replicator: %v", err)
		}
	}
	const snapshot = 20
	// Up to the snapshot: applied, then synced (Close syncs and flushes the index, whose
	// files are kept: a power cut never leaves the index ahead of the synced log).
	first := s.ApplyWrites(ctx, rl.entries[:snapshot])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	oldIndex := t.TempDir()
	copyDir(t, filepath.Join(dir, "index"), oldIndex)
	seg, synced := newestSegment(t, dir)

	// After it: applied in Raft batches and acknowledged, never synced.
	s = open(dir)
	var acked []pmd.Outcome
	for from := snapshot; from < len(rl.entries); from += 7 {
		acked = append(acked, s.ApplyWrites(ctx, rl.entries[from:min(from+7, len(rl.entries))])...)
	}
	before := allEvents(t, s)
	if s.Applied() != 60 {
		t.Fatalf("Applied = %d, want 60", s.Applied())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The power cut: half the bytes written since the sync are gone, the last record
	// torn, and the index is what it was at the sync.
	if again, size := newestSegment(t, dir); again != seg {
		t.Fatalf("the test wants one segment, the log cycled to %s", again)
	} else {
		truncate(t, seg, synced+(size-synced)/2)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	copyDir(t, oldIndex, filepath.Join(dir, "index"))

	s = open(dir)
	defer s.Close()
	lost := s.Applied()
	if lost < snapshot || lost >= 60 {
		t.Fatalf("after the power cut Applied = %d, want between the snapshot (%d) and 60", lost, snapshot)
	}
	// Raft applies every entry after its snapshot again.
	var replayed []pmd.Outcome
	for from := snapshot; from < len(rl.entries); from += 5 {
		replayed = append(replayed, s.ApplyWrites(ctx, rl.entries[from:min(from+5, len(rl.entries))])...)
	}
	for i, o := range replayed {
		idx := uint64(snapshot + i + 1)
		switch {
		case idx <= lost && !o.Skipped:
			t.Fatalf("entry %d, which the store held, was applied again: %+v", idx, o)
		case idx > lost && (o.Skipped || (o.Err == nil) != (acked[i].Err == nil) || !reflect.DeepEqual(o.Result, acked[i].Result)):
			t.Fatalf("entry %d applied again: %+v, first time %+v", idx, o, acked[i])
		}
	}
	if s.Applied() != 60 {
		t.Fatalf("after the replay Applied = %d, want 60", s.Applied())
	}
	if got := allEvents(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("after the replay the store holds %d events, before the power cut %d:\n%+v\n%+v", len(got), len(before), got, before)
	}
	refused := 0
	for _, o := range append(first, acked...) {
		if o.Err != nil {
			refused++
		}
	}
	if refused != 6 || len(before) != 54 {
		t.Fatalf("%d writes refused and %d events, want 6 and 54", refused, len(before))
	}
}

// TestCopyThenApply: a replica that catches up by copying records applies the next
// entry against them at once: CopyRecords returns once the records are indexed, so the
// entry's expected version is checked against the copied stream, as on the replica it
// copied from.
func TestCopyThenApply(t *testing.T) {
	ctx := context.Background()
	rl := &raftish{}
	open := func() *pmd.Store {
		s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, NoScrub: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetReplicator(rl.fn); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, c := open(), open()
	defer a.Close()
	defer c.Close()
	const n = 3000
	for i := range n {
		_, _ = a.Append(ctx, "s", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"i": i}})
	}
	_, _ = a.Append(ctx, "s", pmd.AtVersion(n-1), pmd.EventData{Type: "Next"})
	for i, o := range a.ApplyWrites(ctx, rl.entries[:n]) {
		if o.Err != nil {
			t.Fatalf("entry %d: %v", i+1, o.Err)
		}
	}
	var recs []pmdlog.Record
	if err := a.ScanRecords(ctx, 1, a.LastPosition(), func(r *pmdlog.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	for len(recs) > 0 {
		chunk := recs[:min(500, len(recs))]
		if err := c.CopyRecords(ctx, chunk); err != nil {
			t.Fatal(err)
		}
		recs = recs[len(chunk):]
	}
	for _, s := range []*pmd.Store{a, c} {
		if out := s.ApplyWrites(ctx, rl.entries[n:]); out[0].Err != nil {
			t.Fatalf("the entry after the copy, expecting version %d: %v", n-1, out[0].Err)
		}
	}
	if got, want := allEvents(t, c), allEvents(t, a); !reflect.DeepEqual(got, want) {
		t.Fatalf("the copy differs: %d events, want %d", len(got), len(want))
	}
}
