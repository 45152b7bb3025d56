package pmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

func TestRetention(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	var a []pmd.EventData
	for i := range 10 {
		a = append(a, ev("A", "i", i))
	}
	mustAppend(t, s, "A$1", pmd.NoStream, a...)
	mustLink(t, s, "B$1", pmd.NoStream, a[2].ID)

	if err := s.SetRetention(ctx, "A$1", pmd.Retention{TruncateBefore: 5}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Retention("A$1"); err != nil || r != (pmd.Retention{TruncateBefore: 5}) {
		t.Fatalf("Retention = %+v, %v", r, err)
	}
	got, err := readStream(t, s, "A$1", pmd.ReadOptions{})
	if err != nil || !reflect.DeepEqual(versions(got), []uint64{5, 6, 7, 8, 9}) {
		t.Fatalf("truncated stream reads versions %v, %v", versions(got), err)
	}
	// Versions 0-4 are dead but for a[2], which B$1 still shows.
	wantAll := append([]uuid.UUID{a[2].ID}, dataIDs(a[5:])...)
	if all := ids(readAll(t, s, pmd.ReadOptions{})); !reflect.DeepEqual(all, wantAll) {
		t.Fatalf("$all = %v, want %v", all, wantAll)
	}
	checkAllBackward(t, s, wantAll)
	if _, err := s.Event(ctx, a[0].ID); !errors.Is(err, pmd.ErrEventNotFound) {
		t.Fatalf("a truncated event by id: %v, want not found", err)
	}
	if e, err := s.Event(ctx, a[2].ID); err != nil || e.ID != a[2].ID {
		t.Fatalf("an event truncated but linked elsewhere, by id: %v", err)
	}
	// The stream's version is not changed by its retention.
	if info := streamInfo(t, s, "A$1"); !info.Exists || info.Version != 9 {
		t.Fatalf("StreamInfo = %+v", info)
	}

	// A maximum count moves with every append.
	if err := s.SetRetention(ctx, "A$1", pmd.Retention{MaxCount: 3}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "A$1", pmd.AtVersion(9), ev("A", "i", 10))
	if got, _ := readStream(t, s, "A$1", pmd.ReadOptions{}); !reflect.DeepEqual(versions(got), []uint64{8, 9, 10}) {
		t.Fatalf("max count 3 reads versions %v", versions(got))
	}
	// Showing more later does not bring anything back.
	if err := s.SetRetention(ctx, "A$1", pmd.Retention{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readStream(t, s, "A$1", pmd.ReadOptions{}); !reflect.DeepEqual(versions(got), []uint64{8, 9, 10}) {
		t.Fatalf("after clearing retention the stream reads versions %v", versions(got))
	}

	// A maximum age hides at once; the events die at the next scavenge.
	c := []pmd.EventData{ev("C"), ev("C")}
	mustAppend(t, s, "C$1", pmd.NoStream, c...)
	if err := s.SetRetention(ctx, "C$1", pmd.Retention{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readStream(t, s, "C$1", pmd.ReadOptions{}); len(got) != 2 {
		t.Fatalf("an hour's max age hides %d of 2 fresh events", 2-len(got))
	}
	if err := s.SetRetention(ctx, "C$1", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	// A stream whose events are all hidden reads as empty, not as not found.
	if got, err := readStream(t, s, "C$1", pmd.ReadOptions{Limit: 1}); err != nil || len(got) != 0 {
		t.Fatalf("a nanosecond's max age shows %v, %v; want nothing and no error", ids(got), err)
	}
	if _, err := s.Event(ctx, c[0].ID); err != nil {
		t.Fatalf("an expired event is alive until a scavenge records the expiry: %v", err)
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{})
	if err != nil || res.Expired != 1 {
		t.Fatalf("Scavenge = %+v, %v; want one stream expired", res, err)
	}
	if _, err := s.Event(ctx, c[0].ID); !errors.Is(err, pmd.ErrEventNotFound) {
		t.Fatalf("an expired event after a scavenge, by id: %v, want not found", err)
	}
	if got, err := readStream(t, s, "C$1", pmd.ReadOptions{}); err != nil || len(got) != 0 {
		t.Fatalf("a stream whose events expired reads %v, %v; want nothing and no error", ids(got), err)
	}
	// The expired events left $all, forward and backward.
	all := ids(readAll(t, s, pmd.ReadOptions{}))
	if slices.Contains(all, c[0].ID) || slices.Contains(all, c[1].ID) {
		t.Fatalf("$all after the expiry still shows the expired events: %v", all)
	}
	checkAllBackward(t, s, all)

	// Truncating every event (up to the next version) reads as empty too, whichever way.
	d := []pmd.EventData{ev("D"), ev("D"), ev("D")}
	mustAppend(t, s, "D$1", pmd.NoStream, d...)
	if err := s.SetRetention(ctx, "D$1", pmd.Retention{TruncateBefore: 3}); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []pmd.ReadOptions{{}, {From: pmd.End, Backward: true}} {
		if got, err := readStream(t, s, "D$1", opts); err != nil || len(got) != 0 {
			t.Fatalf("truncate_before 3, read %+v: %v, %v; want nothing and no error", opts, ids(got), err)
		}
	}
	if info := streamInfo(t, s, "D$1"); !info.Exists || info.Version != 2 {
		t.Fatalf("StreamInfo of a stream truncated past its end = %+v", info)
	}

	// Bad input changes nothing.
	if err := s.SetRetention(ctx, "A$1", pmd.Retention{MaxAge: -time.Second}); !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Fatalf("negative max age: %v", err)
	}
	if err := s.SetRetention(ctx, "$all", pmd.Retention{}); !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Fatalf("retention of $all: %v", err)
	}
}

// checkAllBackward checks that $all read backward from the end gives want, the ids of a
// forward read, in reverse: the backward read leaves out the same dead events.
func checkAllBackward(t *testing.T, s *pmd.Store, want []uuid.UUID) {
	t.Helper()
	want = slices.Clone(want)
	slices.Reverse(want)
	if got := ids(readAll(t, s, pmd.ReadOptions{From: pmd.End, Backward: true})); !reflect.DeepEqual(got, want) {
		t.Fatalf("$all backward = %v, want %v", got, want)
	}
}

func TestEraseStream(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	secret := ev("AddressGiven", "street", "Secret Lane 1")
	secret.Metadata = map[string]any{"ip": "10.0.0.1"}
	mustAppend(t, s, "Customer$7", pmd.NoStream, secret, ev("Named", "name", "Ada"))
	mustLink(t, s, "Order$1", pmd.NoStream, secret.ID)
	// An event of another stream linked into the erased one was not written to it: it
	// keeps its data.
	other := ev("Shipped", "to", "Ada")
	other.Metadata = map[string]any{"by": "courier"}
	mustAppend(t, s, "Other$1", pmd.NoStream, other)
	mustLink(t, s, "Customer$7", pmd.AtVersion(1), other.ID)
	if err := s.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	later := mustAppend(t, s, "Customer$7", pmd.AtVersion(2), ev("Named", "name", "Grace"))

	check := func(e pmd.Event, wantErased bool) {
		t.Helper()
		if e.Erased != wantErased || wantErased && (e.Data != nil || e.Metadata != nil) || !wantErased && e.Data == nil {
			t.Fatalf("event %s at %d: erased %v, data %v, metadata %v; want erased %v", e.Type, e.Position, e.Erased, e.Data, e.Metadata, wantErased)
		}
	}
	// keepsOther checks that the linked event of Other$1 reads whole.
	keepsOther := func(e pmd.Event, where string) {
		t.Helper()
		if e.ID != other.ID || e.Erased || e.Data["to"] != "Ada" || e.Metadata["by"] != "courier" {
			t.Fatalf("%s: the event of Other$1 reads %+v; want it whole, not erased", where, e)
		}
	}
	got, _ := readStream(t, s, "Customer$7", pmd.ReadOptions{})
	if len(got) != 4 || got[0].ID != secret.ID || got[0].Type != "AddressGiven" || got[0].Timestamp.IsZero() {
		t.Fatalf("erased stream reads %+v", got)
	}
	check(got[0], true)
	check(got[1], true)
	if !got[2].Link {
		t.Fatalf("Customer$7 version 2 is not the link: %+v", got[2])
	}
	keepsOther(got[2], "read in the erased stream")
	check(got[3], false) // appended after the erasure
	if got[3].Position != later.FirstPosition {
		t.Fatalf("later event at %d, written at %d", got[3].Position, later.FirstPosition)
	}
	linked, _ := readStream(t, s, "Order$1", pmd.ReadOptions{})
	check(linked[0], true)
	byID, err := s.Event(ctx, secret.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(byID, true)
	checkOther := func(when string) {
		t.Helper()
		e, err := s.Event(ctx, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		keepsOther(e, "by id"+when)
		n := 0
		for _, e := range readAll(t, s, pmd.ReadOptions{}) {
			if e.ID == other.ID {
				keepsOther(e, "in $all"+when)
				n++
				continue
			}
			check(e, e.Position < later.FirstPosition)
		}
		if n != 1 {
			t.Fatalf("$all%s shows the event of Other$1 %d times", when, n)
		}
		own, err := readStream(t, s, "Other$1", pmd.ReadOptions{})
		if err != nil || len(own) != 1 {
			t.Fatalf("Other$1%s reads %v, %v", when, ids(own), err)
		}
		keepsOther(own[0], "in its own stream"+when)
	}
	checkOther("")
	// A scavenge removes the erased data from the disk, not the linked event's.
	if res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || res.Erased != 2 {
		t.Fatalf("Scavenge = %+v, %v; want the two erased events rewritten", res, err)
	}
	checkOther(" after a scavenge")
	got, _ = readStream(t, s, "Customer$7", pmd.ReadOptions{From: 2, Limit: 1})
	if len(got) != 1 {
		t.Fatalf("Customer$7 from version 2 after a scavenge reads %v", ids(got))
	}
	keepsOther(got[0], "read in the erased stream after a scavenge")
	if err := s.EraseStream(ctx, "Nope$1"); err != nil {
		t.Fatalf("erasing a stream never written: %v", err)
	}
}

// TestScavenge fills sealed segments with live, dead and erased events, scavenges, and
// checks that every read answers as before, that the bytes are gone from the disk, and
// that an index rebuilt from the scavenged log answers the same.
func TestScavenge(t *testing.T) {
	dir := t.TempDir()
	open := func() *pmd.Store {
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	ctx := context.Background()
	const marker = "ERASE-ME-"
	for i := range 300 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%10), pmd.Any, ev("Placed", "pad", strings.Repeat("x", 100), "i", i))
		mustAppend(t, s, fmt.Sprintf("Customer$%d", i%5), pmd.Any, ev("Said", "secret", fmt.Sprint(marker, i)))
	}
	// Kill most orders: delete three streams, truncate two, link a few facts first so
	// that some of them live on.
	for _, e := range readAll(t, s, pmd.ReadOptions{Limit: 40}) {
		if e.Stream == "Order$3" {
			mustLink(t, s, "Process$1", pmd.Any, e.ID)
		}
	}
	for _, name := range []string{"Order$1", "Order$2", "Order$3"} {
		if err := s.DeleteStream(ctx, name, pmd.Any); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"Order$4", "Order$5"} {
		if err := s.SetRetention(ctx, name, pmd.Retention{MaxCount: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EraseStream(ctx, "Customer$1"); err != nil {
		t.Fatal(err)
	}
	// Fill the newest segment so that what came before is sealed.
	for i := range 60 {
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", strings.Repeat("f", 200), "i", i))
	}
	before := snapshot(t, s)
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Gone == 0 || res.Erased == 0 || res.Freed() <= 0 || res.Rewritten == 0 {
		t.Fatalf("Scavenge = %+v: it removed nothing", res)
	}
	if st := s.Stats(); st.Scavenges != 1 || st.ScavengedBytes != uint64(res.Freed()) {
		t.Fatalf("Stats after a scavenge: %d scavenges, %d bytes freed; want 1, %d", st.Scavenges, st.ScavengedBytes, res.Freed())
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("reads answer differently after a scavenge")
	}
	again, err := s.Scavenge(ctx, pmd.ScavengeOptions{})
	if err != nil || again.Rewritten != 0 {
		t.Fatalf("a second scavenge: %+v, %v; want nothing to do", again, err)
	}
	last := s.LastPosition()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The erased data is gone from the sealed segments (the newest may still hold some
	// until it is sealed).
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*"))
	slices.Sort(segs)
	for _, seg := range segs[:len(segs)-1] {
		if strings.Contains(seg, ".") {
			continue
		}
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < 300; i += 5 { // Customer$1's
			str := fmt.Sprint(marker, i)
			if bytes.Contains(b, append([]byte{0xa0 | byte(len(str))}, str...)) {
				t.Fatalf("segment %s still holds erased data %s", seg, str)
			}
		}
	}
	// The scavenged log verifies, and an index rebuilt from it answers the same.
	report, err := engine.Verify(ctx, dir, nil)
	if err != nil || !report.OK() || report.Gone == 0 {
		t.Fatalf("verify after a scavenge: %+v, %v", report, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if s.LastPosition() != last {
		t.Fatalf("LastPosition %d after a rebuild, %d before", s.LastPosition(), last)
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("an index rebuilt from the scavenged log answers differently")
	}
	// Versions go on where they were.
	if res := mustAppend(t, s, "Order$4", pmd.Any, ev("More")); res.Version != 30 {
		t.Fatalf("Order$4 goes on at version %d, want 30", res.Version)
	}
	if res := mustAppend(t, s, "Order$1", pmd.NoStream, ev("Again")); res.Version != 30 {
		t.Fatalf("the deleted Order$1 starts again at version %d, want 30", res.Version)
	}
}

// An erasure leaves the disk at the next scavenge even when the erased events are in the
// newest segment, which the scavenge seals first.
func TestScavengeSealsAnErasedTail(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const secret = "Secret Lane 12345"
	mustAppend(t, s, "Customer$7", pmd.NoStream, ev("AddressGiven", "street", secret))
	mustAppend(t, s, "Other$1", pmd.NoStream, ev("Kept", "n", 1))
	if err := s.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || res.Erased != 1 {
		t.Fatalf("Scavenge = %+v, %v; want the erased event rewritten", res, err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "log", strings.Repeat("[0-9]", 20)))
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s still holds the erased data", seg)
		}
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Fatal("reads answer differently after the scavenge")
	}
	mustAppend(t, s, "Other$1", pmd.Any, ev("After", "n", 2)) // writes go on in the new segment
	// A scavenge with nothing erased in the newest segment does not seal it.
	n := len(segs)
	if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{}); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "log", strings.Repeat("[0-9]", 20))); len(segs) != n {
		t.Fatalf("a scavenge with nothing to erase made %d segments of %d", len(segs), n)
	}
}

// inlineRaft stands in for a cluster of one: it applies each replicated write at once,
// and keeps the entries, for another replica to apply. before, if set, runs once before
// the next write is numbered and applied, as another client's write that Raft orders
// first.
type inlineRaft struct {
	s       *pmd.Store
	mu      sync.Mutex
	entries []pmd.ReplicatedWrite
	before  func()
}

func (r *inlineRaft) fn(ctx context.Context, write []byte) (pmd.WriteResult, error) {
	r.mu.Lock()
	before := r.before
	r.before = nil
	r.mu.Unlock()
	if before != nil {
		before()
	}
	r.mu.Lock()
	w := pmd.ReplicatedWrite{Index: uint64(len(r.entries)) + 1, Timestamp: time.Now().UnixNano(), Write: write}
	r.entries = append(r.entries, w)
	r.mu.Unlock()
	out := r.s.ApplyWrites(ctx, []pmd.ReplicatedWrite{w})
	return out[0].Result, out[0].Err
}

// agedStreams is a store whose writes go through an inlineRaft, holding the streams S$a
// and S$b of two events each, both with a max age of 1 ns: a scavenge expires them, and
// the inlineRaft's hooks run something between its expiry records.
func agedStreams(t *testing.T) (*pmd.Store, *inlineRaft) {
	t.Helper()
	s := openStore(t, "")
	r := &inlineRaft{s: s}
	if _, err := s.SetReplicator(r.fn); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"S$a", "S$b"} {
		mustAppend(t, s, name, pmd.NoStream, ev("T"), ev("T"))
		if err := s.SetRetention(context.Background(), name, pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
	}
	return s, r
}

// TestScavengeKeepsConcurrentRetention: a scavenge reads a page of streams with their
// settings, then writes an expiry record for each; a SetRetention that comes in between
// is kept, not replaced by the settings the scavenge read, and one that changed the max
// age drops that stream's expiry (its events are shown again). A replica that applies
// the same entries in one go (the SetRetention and the expiry in one batch) agrees.
func TestScavengeKeepsConcurrentRetention(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     pmd.Retention // S$b's settings, set while the scavenge runs
		at      string        // just before the expiry record of this stream
		expired int           // streams whose expiry the scavenge records
		shows   int           // the events S$b reads afterwards
	}{
		{"same max age before S$a's expiry", pmd.Retention{MaxAge: time.Nanosecond, MaxCount: 7}, "S$a", 2, 0},
		{"same max age before S$b's expiry", pmd.Retention{MaxAge: time.Nanosecond, MaxCount: 7}, "S$b", 2, 0},
		{"longer max age before S$b's expiry", pmd.Retention{MaxAge: time.Hour}, "S$b", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, r := agedStreams(t)
			set := make(chan error, 1)
			hook := func() { set <- s.SetRetention(ctx, "S$b", tc.set) }
			if tc.at == "S$b" { // the scavenge writes S$a's expiry first
				first := hook
				hook = func() {
					r.mu.Lock()
					r.before = first
					r.mu.Unlock()
				}
			}
			r.mu.Lock()
			r.before = hook
			r.mu.Unlock()
			res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
			if err != nil || res.Expired != tc.expired {
				t.Fatalf("Scavenge = %+v, %v; want %d stream(s) expired", res, err, tc.expired)
			}
			select {
			case err := <-set:
				if err != nil {
					t.Fatalf("SetRetention during the scavenge: %v", err)
				}
			default:
				t.Fatal("the scavenge wrote no expiry record")
			}
			for _, st := range []*pmd.Store{s, replay(t, r.entries)} {
				if got, err := st.Retention("S$b"); err != nil || got != tc.set {
					t.Fatalf("Retention(S$b) after the scavenge = %+v, %v; want %+v, set while it ran", got, err, tc.set)
				}
				if got, err := st.Retention("S$a"); err != nil || got != (pmd.Retention{MaxAge: time.Nanosecond}) {
					t.Fatalf("Retention(S$a) after the scavenge = %+v, %v", got, err)
				}
				if got, err := readStream(t, st, "S$b", pmd.ReadOptions{}); err != nil || len(got) != tc.shows {
					t.Fatalf("S$b after the scavenge reads %v, %v; want %d events", ids(got), err, tc.shows)
				}
			}
		})
	}
}

// replay applies entries to a new replica in one call, so that they share its batches.
func replay(t *testing.T, entries []pmd.ReplicatedWrite) *pmd.Store {
	t.Helper()
	s := openStore(t, "")
	if _, err := s.SetReplicator(func(context.Context, []byte) (pmd.WriteResult, error) {
		return pmd.WriteResult{}, errors.New("a replay takes no writes")
	}); err != nil {
		t.Fatal(err)
	}
	for i, o := range s.ApplyWrites(context.Background(), entries) {
		if o.Err != nil {
			t.Fatalf("replay entry %d: %v", entries[i].Index, o.Err)
		}
	}
	return s
}

// TestTruncateBeforePastTheEnd: a truncate_before past a stream's next version would
// hide the events appended after it; it is refused, naming the field and the next
// version, and changes nothing.
func TestTruncateBeforePastTheEnd(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "")
	mustAppend(t, s, "A$1", pmd.NoStream, ev("T"), ev("T"), ev("T")) // next version 3
	if err := s.SetRetention(ctx, "A$1", pmd.Retention{TruncateBefore: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stream string
		before uint64
		next   uint64 // the stream's next version, named in the error
	}{
		{"A$1", 4, 3},
		{"A$1", 4200, 3},
		{"Never$1", 1, 0},
	} {
		old, err := s.Retention(tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		err = s.SetRetention(ctx, tc.stream, pmd.Retention{MaxCount: 9, TruncateBefore: tc.before})
		var bad *pmd.InvalidArgumentError
		if !errors.As(err, &bad) || bad.Arg != "truncate_before" || !strings.Contains(err.Error(), fmt.Sprintf("next version is %d", tc.next)) {
			t.Fatalf("%s: truncate_before %d: %v; want an invalid truncate_before naming next version %d", tc.stream, tc.before, err, tc.next)
		}
		if got, err := s.Retention(tc.stream); err != nil || got != old {
			t.Fatalf("%s: a refused setting changed the retention to %+v, %v; want %+v", tc.stream, got, err, old)
		}
	}
	// The stream's next version itself is fine, and hides nothing appended later.
	if err := s.SetRetention(ctx, "A$1", pmd.Retention{TruncateBefore: 3}); err != nil {
		t.Fatal(err)
	}
	e := ev("T")
	mustAppend(t, s, "A$1", pmd.AtVersion(2), e)
	if got, err := readStream(t, s, "A$1", pmd.ReadOptions{}); err != nil || !reflect.DeepEqual(ids(got), []uuid.UUID{e.ID}) {
		t.Fatalf("after truncate_before 3 and an append, A$1 reads %v, %v; want %v", ids(got), err, e.ID)
	}
	if _, err := s.Event(ctx, e.ID); err != nil {
		t.Fatalf("the appended event by id: %v", err)
	}
}

// TestOfflineScavengeOfAReplica: a store opened without SetReplicator on a stopped
// cluster node's data directory (pmd scavenge DIR) records no expiry: a record written
// there would take a position Raft never agreed on and leave the node at Applied 0.
// It still frees the bytes of dead events' data, keeping their records as a replica's
// scavenge does (TestCopyOfAScavengedReplicaPrefix).
func TestOfflineScavengeOfAReplica(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := pmd.Options{NoSync: true, Logger: quietLogger(), SegmentSize: 8 << 10}
	open := func(replica bool) (*pmd.Store, *inlineRaft, uint64) {
		t.Helper()
		s, err := pmd.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !replica {
			return s, nil, 0
		}
		r := &inlineRaft{s: s}
		applied, err := s.SetReplicator(r.fn)
		if err != nil {
			t.Fatal(err)
		}
		r.entries = make([]pmd.ReplicatedWrite, applied) // Raft numbers on from Applied
		return s, r, applied
	}
	s, r, _ := open(true)
	pad := strings.Repeat("x", 200)
	for i := range 60 {
		mustAppend(t, s, fmt.Sprintf("Order$%d", i%2), pmd.Any, ev("Placed", "pad", pad))
	}
	if err := s.SetRetention(ctx, "Order$0", pmd.Retention{MaxAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "Order$1", pmd.Any); err != nil {
		t.Fatal(err)
	}
	for range 60 { // seal what came before
		mustAppend(t, s, "Filler", pmd.Any, ev("F", "pad", pad))
	}
	applied, last := s.Applied(), s.LastPosition()
	if applied != uint64(len(r.entries)) {
		t.Fatalf("the replica applied %d of %d entries", applied, len(r.entries))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, _, _ = open(false)
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1})
	if err != nil || !res.ExpirySkipped || res.Expired != 0 || res.Gone != 0 || res.DeadKept != 30 || res.Erased != 0 || res.Freed() <= 0 {
		t.Fatalf("an offline scavenge of a replica: %+v, %v; want no expiry, the deleted stream's 30 events kept without their data, nothing gone or erased", res, err)
	}
	if got := s.LastPosition(); got != last {
		t.Fatalf("an offline scavenge of a replica wrote to its log: last position %d, was %d", got, last)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, _, again := open(true)
	defer s.Close()
	if again != applied {
		t.Fatalf("after an offline scavenge the replica opens at Applied %d, was %d", again, applied)
	}
	// The leader's scavenge records the expiry, as a write of the cluster.
	if res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil || res.ExpirySkipped || res.Expired != 1 {
		t.Fatalf("the replica's own scavenge: %+v, %v; want Order$0 expired", res, err)
	}
	if got := s.Applied(); got != applied+1 {
		t.Fatalf("the expiry is Raft entry %d, want %d", got, applied+1)
	}
}

// TestCausedLeavesOutErasedEvents: an erased event's causation_id went with its
// metadata, so Caused does not list it, before a scavenge, after it and after the index
// is rebuilt from the scavenged log; a limit counts the events listed.
func TestCausedLeavesOutErasedEvents(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	parent := ev("Placed")
	mustAppend(t, s, "Order$1", pmd.NoStream, parent)
	secret, kept := causedBy("Notified", parent.ID), causedBy("Shipped", parent.ID)
	mustAppend(t, s, "Customer$7", pmd.NoStream, secret)
	mustAppend(t, s, "Shipping$1", pmd.NoStream, kept)
	if err := s.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	want := []uuid.UUID{kept.ID}
	check := func(when string) {
		t.Helper()
		for _, limit := range []int{0, 1} {
			if got := caused(t, s, parent.ID, limit); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: Caused(parent, limit %d) = %v, want only the event not erased, %v", when, limit, got, want)
			}
		}
	}
	check("after the erasure")
	if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
		t.Fatal(err)
	}
	check("after a scavenge")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damageIndex(t, dir, "index deleted")
	s = openStore(t, dir)
	check("after the index is rebuilt")
}

// TestDeadEventsLeaveCategoryAndTypeReads: an event no stream shows any more, by a
// deletion or a truncation, leaves its category's read and its type's, and they answer
// the same after a scavenge and an index rebuild; an event linked elsewhere stays.
func TestDeadEventsLeaveCategoryAndTypeReads(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	a := []pmd.EventData{ev("Placed"), ev("Placed"), ev("Paid")}
	b := []pmd.EventData{ev("Placed"), ev("Paid")}
	mustAppend(t, s, "Order$1", pmd.NoStream, a...)
	mustAppend(t, s, "Order$2", pmd.NoStream, b...)
	mustLink(t, s, "PM$1", pmd.NoStream, a[1].ID)
	mustDelete(t, s, "Order$1")
	if err := s.SetRetention(ctx, "Order$2", pmd.Retention{TruncateBefore: 1}); err != nil {
		t.Fatal(err)
	}
	read := func(events iter.Seq2[pmd.Event, error]) []uuid.UUID {
		t.Helper()
		var out []uuid.UUID
		for e, err := range events {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e.ID)
		}
		return out
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			what   string
			events iter.Seq2[pmd.Event, error]
			want   []uuid.UUID
		}{
			{"category Order", s.ReadCategory(ctx, "Order", pmd.ReadOptions{}), []uuid.UUID{a[1].ID, b[1].ID}},
			{"category Order backward", s.ReadCategory(ctx, "Order", pmd.ReadOptions{From: pmd.End, Backward: true}), []uuid.UUID{b[1].ID, a[1].ID}},
			{"type Placed", s.ReadAll(ctx, pmd.ReadOptions{Types: []string{"Placed"}}), []uuid.UUID{a[1].ID}},
			{"type Paid", s.ReadAll(ctx, pmd.ReadOptions{Types: []string{"Paid"}}), []uuid.UUID{b[1].ID}},
			{"type Paid backward", s.ReadAll(ctx, pmd.ReadOptions{Types: []string{"Paid"}, From: pmd.End, Backward: true}), []uuid.UUID{b[1].ID}},
		} {
			if got := read(c.events); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%s: %s reads %v, want %v", when, c.what, got, c.want)
			}
		}
	}
	check("after the deletion and the truncation")
	if _, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: -1}); err != nil {
		t.Fatal(err)
	}
	check("after a scavenge")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damageIndex(t, dir, "index deleted")
	s = openStore(t, dir)
	check("after the index is rebuilt")
}
