package index

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// eraseEach erases the streams E$from..E$to-1, one batch each, at the positions after
// the index's.
func eraseEach(t testing.TB, x *Index, from, to int) {
	t.Helper()
	b := x.NewBatch()
	for i := from; i < to; i++ {
		if err := b.Erase(b.Position()+1, fmt.Sprint("E$", i), uint64(i%3+1)); err != nil {
			t.Fatal(err)
		}
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
}

// checkErased checks that the streams E$from..E$to-1 are erased below the version eraseEach
// gave them, and no further.
func checkErased(t *testing.T, x *Index, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		name, before := fmt.Sprint("E$", i), uint64(i%3+1)
		if !x.Erased(name, before-1) || x.Erased(name, before) {
			t.Fatalf("%s: Erased(%d) = %v, Erased(%d) = %v; want erased below %d",
				name, before-1, x.Erased(name, before-1), before, x.Erased(name, before), before)
		}
	}
}

// TestEraseMarksSurviveReopen: the erase marks of many streams erased one at a time are
// all visible, to a reader that asks meanwhile too, before and after their hand-off to
// pebble; after a close without Flush (what a crash leaves) those written out stay
// erased at the next open, and those applied after the last Flush are lost with the
// position, so the owner's replay of the log gives them back.
func TestEraseMarksSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	x := openTest(t, dir)
	// A reader meanwhile: the marks change in place, under the race detector.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				x.Erased("E$1", 0)
				x.AnyErased()
			}
		}
	}()
	eraseEach(t, x, 0, 300)
	close(stop)
	<-stopped
	checkErased(t, x, 0, 300)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	checkErased(t, x, 0, 300) // from pebble now: the overlays are handed off
	durable := x.Position()
	eraseEach(t, x, 300, 400) // not flushed: lost by the close
	checkErased(t, x, 0, 400)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	x = openTest(t, dir)
	if x.Position() != durable {
		t.Fatalf("reopened at position %d, want %d", x.Position(), durable)
	}
	checkErased(t, x, 0, 300)
	if !x.AnyErased() {
		t.Fatal("AnyErased is false after the reopen")
	}
	eraseEach(t, x, 300, 400) // the replay
	checkErased(t, x, 0, 400)
	if x.Erased("Never$1", 0) {
		t.Fatal("Erased holds for a stream never erased")
	}
}

// BenchmarkEraseOneStream: what one erasure of one stream costs an index that holds the
// erase marks of n streams already (GDPR erasure, a stream per user, one at a time): it
// must not grow with n.
func BenchmarkEraseOneStream(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint("marks=", n), func(b *testing.B) {
			x := openTest(b, b.TempDir())
			all := x.NewBatch()
			for i := range n {
				if err := all.Erase(all.Position()+1, fmt.Sprint("Old$", i), 1); err != nil {
					b.Fatal(err)
				}
			}
			if err := x.Apply(all); err != nil {
				b.Fatal(err)
			}
			if err := x.Flush(); err != nil {
				b.Fatal(err)
			}
			batch := x.NewBatch()
			i := 0
			for b.Loop() {
				if err := batch.Erase(batch.Position()+1, fmt.Sprint("E$", i), 1); err != nil {
					b.Fatal(err)
				}
				if err := x.Apply(batch); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkErased: what every event read pays to ask whether its event was erased, in an
// index that erased 100k streams (handed off to pebble): for a stream never erased, and
// for an erased one, whose mark is read from pebble.
func BenchmarkErased(b *testing.B) {
	x := openTest(b, b.TempDir())
	all := x.NewBatch()
	for i := range 100_000 {
		if err := all.Erase(all.Position()+1, fmt.Sprint("E$", i), 5); err != nil {
			b.Fatal(err)
		}
	}
	if err := x.Apply(all); err != nil {
		b.Fatal(err)
	}
	if err := x.Flush(); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, stream string
		want         bool
	}{{"never erased", "Kept$1", false}, {"erased", "E$77", true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if x.Erased(c.stream, 1) != c.want {
					b.Fatalf("Erased(%q) = %v", c.stream, !c.want)
				}
			}
		})
	}
}

// TestUnreadableEraseMarkReports: an erase mark pebble holds but that cannot be read
// erases everything of its stream (no data served on a guess) and reports the damage to
// OnDamage, on a read (Erased) and on a later erase of the stream (Batch.Erase), as every
// other read of the index does; a closed index erases everything, reporting no damage.
func TestUnreadableEraseMarkReports(t *testing.T) {
	var reported []error
	x, err := Open(t.TempDir(), Options{CacheSize: 1 << 20, OnDamage: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	eraseEach(t, x, 0, 2)
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	// E$1's mark is in pebble alone after the hand-off: damage it there.
	if err := x.db.Set(nameKey(nil, spaceErased, "E$1"), []byte{0xff}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if !x.Erased("E$1", 100) {
		t.Error("Erased is false for a stream whose mark cannot be read")
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrDamaged) {
		t.Fatalf("after Erased, OnDamage got %v, want one ErrDamaged", reported)
	}
	b := x.NewBatch()
	if err := b.Erase(b.Position()+1, "E$1", 5); !errors.Is(err, ErrDamaged) {
		t.Errorf("Batch.Erase over an unreadable mark: %v, want ErrDamaged", err)
	}
	if len(reported) != 2 || !errors.Is(reported[1], ErrDamaged) {
		t.Fatalf("after Batch.Erase, OnDamage got %v, want two ErrDamaged", reported)
	}
	checkErased(t, x, 0, 1) // the mark beside it reads
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if !x.Erased("E$0", 100) {
		t.Error("Erased is false on a closed index")
	}
	if len(reported) != 2 {
		t.Errorf("a closed index reported damage: %v", reported[2:])
	}
}

// TestLoadErasedKeepsNoNames: the open reads every erase mark into eraseMarks, a hash of
// each stream's name, without making the names: a million erased streams would cost it
// 80 MB of names held at once, what eraseMarks is there to save.
func TestLoadErasedKeepsNoNames(t *testing.T) {
	const n, long = 2000, 1000
	name := func(i int) string { return fmt.Sprintf("E$%0*d", long, i) }
	// A cache that holds every block: the loads after the first read none.
	x, err := Open(t.TempDir(), Options{CacheSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	b := x.NewBatch()
	for i := range n {
		if err := b.Erase(b.Position()+1, name(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	// The least of up to 20 loads: TotalAlloc counts the index's own goroutines too, and
	// on a loaded machine a pebble flush or compaction of the marks can run across
	// several loads (one CI run saw 2.4 MB in each of four).
	least := uint64(math.MaxUint64)
	for range 20 {
		if least < n*long/2 {
			break
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := x.loadErased(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	t.Logf("loading %d erase marks allocates %d bytes", n, least)
	if least >= n*long/2 {
		t.Errorf("loading %d erase marks of %d-byte names allocates %d bytes: a name each?", n, long, least)
	}
	for i := range n {
		if !x.Erased(name(i), 0) || x.Erased(name(i), 1) {
			t.Fatalf("%s is not erased below version 1 alone after the load", name(i))
		}
	}
	if x.Erased("Never$1", 0) {
		t.Fatal("Erased holds for a stream never erased")
	}
}
