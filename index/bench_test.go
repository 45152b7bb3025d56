package index

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/uuid"
)

// The workload of the memory budget: 1M events in 100k streams of 10 categories, with 20
// event types, random (v4-like) ids, and one link every 10 events.
const (
	budgetEvents  = 1_000_000
	budgetStreams = 100_000
)

func benchStreamNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Category%d$%d", i%10, i)
	}
	return names
}

var benchTypes = func() []string {
	types := make([]string, 20)
	for i := range types {
		types[i] = fmt.Sprintf("SomethingHappened%d", i)
	}
	return types
}()

// randomID returns a random version 4 id.
func randomID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	for i := 0; i < len(id); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// buildBenchIndex adds events events spread over streams, and a link after every 10th.
// With causeEvery > 0, every causeEvery-th event has a causation parent, one of the 100
// events before it.
func buildBenchIndex(streams []string, events, causeEvery int) *Index {
	rng := rand.New(rand.NewPCG(1, 2))
	x := New()
	pos := uint64(0)
	for i := range events {
		pos++
		x.AddEvent(pos, randomID(rng), streams[rng.IntN(len(streams))], benchTypes[rng.IntN(len(benchTypes))])
		if causeEvery > 0 && i > 0 && i%causeEvery == causeEvery-1 {
			x.AddCausation(pos, x.evPos[max(0, i-1-rng.IntN(100))])
		}
		if i%10 == 9 {
			pos++
			x.AddLink(pos, streams[rng.IntN(len(streams))], 1+rng.Uint64N(pos-1))
		}
	}
	return x
}

// heapGrowth returns how much live heap build leaves behind, measured after a GC.
func heapGrowth(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return after.HeapAlloc - before.HeapAlloc
}

// bytesPerEvent measures the RAM of an index of events events in streams streams, every
// causeEvery-th with a causation parent (none if 0).
func bytesPerEvent(events, streams, causeEvery int) float64 {
	names := benchStreamNames(streams)
	return float64(heapGrowth(func() any { return buildBenchIndex(names, events, causeEvery) })) / float64(events)
}

func TestMemoryBudget(t *testing.T) {
	// The workload of BenchmarkMemory at a tenth of the size (the budget is per event), or a
	// fortieth with -short.
	events, streams := budgetEvents/10, budgetStreams/10
	if testing.Short() {
		events, streams = events/4, streams/4
	}
	if got := bytesPerEvent(events, streams, 0); got >= 100 {
		t.Fatalf("%.1f bytes of RAM per event, budget < 100", got)
	}
}

// BenchmarkMemory reports the RAM per event of the budget workload, and of the same with
// a causation parent for every other event (a process-manager-heavy store), against the
// bare minimum of keeping an id and a position per event.
func BenchmarkMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1M-event index")
	}
	for _, causeEvery := range []int{0, 2} {
		name := "index"
		if causeEvery > 0 {
			name = fmt.Sprintf("index-caused-every-%d", causeEvery)
		}
		b.Run(name, func(b *testing.B) {
			var perEvent float64
			for range b.N {
				perEvent = bytesPerEvent(budgetEvents, budgetStreams, causeEvery)
			}
			b.ReportMetric(perEvent, "B/event")
		})
	}
	b.Run("baseline-id+position", func(b *testing.B) {
		var perEvent float64
		for range b.N {
			perEvent = float64(heapGrowth(func() any {
				return struct {
					ids []uuid.UUID
					pos []uint64
				}{make([]uuid.UUID, budgetEvents), make([]uint64, budgetEvents)}
			})) / budgetEvents
		}
		b.ReportMetric(perEvent, "B/event")
	})
}

// BenchmarkAddEvent adds events over 100k streams, starting a new index every 1M events
// so the size stays that of the budget workload; the baseline stores just the id in a Go
// map.
func BenchmarkAddEvent(b *testing.B) {
	names := benchStreamNames(budgetStreams)
	b.Run("index", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		x := New()
		b.ReportAllocs()
		for i := range b.N {
			if x.Position() == budgetEvents {
				b.StopTimer()
				x = New()
				runtime.GC()
				b.StartTimer()
			}
			x.AddEvent(x.Position()+1, randomID(rng), names[i%len(names)], benchTypes[i%len(benchTypes)])
		}
	})
	b.Run("baseline-map", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		m := map[uuid.UUID]uint64{}
		b.ReportAllocs()
		for i := range b.N {
			if len(m) == budgetEvents {
				b.StopTimer()
				m = map[uuid.UUID]uint64{}
				runtime.GC()
				b.StartTimer()
			}
			m[randomID(rng)] = uint64(i)
		}
	})
}

// checkpointFile saves the budget workload's index to a file in dir.
func checkpointFile(b *testing.B, dir string) (string, *Index) {
	b.Helper()
	if testing.Short() {
		b.Skip("builds a 1M-event index")
	}
	x := buildBenchIndex(benchStreamNames(budgetStreams), budgetEvents, 0)
	path := filepath.Join(dir, "index.ckpt")
	if err := x.SaveCheckpoint(path); err != nil {
		b.Fatal(err)
	}
	return path, x
}

func reportMillis(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
}

// BenchmarkCheckpointLoad loads the checkpoint of a 1M-event index, against reading the
// same file into memory.
func BenchmarkCheckpointLoad(b *testing.B) {
	path, _ := checkpointFile(b, b.TempDir())
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("LoadCheckpoint", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for range b.N {
			if _, err := LoadCheckpoint(path); err != nil {
				b.Fatal(err)
			}
		}
		reportMillis(b)
	})
	b.Run("baseline-ReadFile", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for range b.N {
			if _, err := os.ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
		reportMillis(b)
	})
}

// BenchmarkCheckpointSave saves the checkpoint of a 1M-event index, against writing and
// syncing the same bytes.
func BenchmarkCheckpointSave(b *testing.B) {
	dir := b.TempDir()
	path, x := checkpointFile(b, dir)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("SaveCheckpoint", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if err := x.SaveCheckpoint(path); err != nil {
				b.Fatal(err)
			}
		}
		reportMillis(b)
	})
	b.Run("baseline-WriteFile+Sync", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			f, err := os.Create(filepath.Join(dir, "raw"))
			if err == nil {
				_, err = f.Write(data)
			}
			if err == nil {
				err = f.Sync()
			}
			if err == nil {
				err = f.Close()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		reportMillis(b)
	})
}

// BenchmarkLookup finds ids in the budget workload's index, against a Go map of the same
// ids.
func BenchmarkLookup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1M-event index")
	}
	x := buildBenchIndex(benchStreamNames(budgetStreams), budgetEvents, 0)
	ids := make(map[uuid.UUID]uint64, len(x.evID))
	for i, id := range x.evID {
		ids[id] = x.evPos[i]
	}
	b.Run("index", func(b *testing.B) {
		for i := range b.N {
			id := x.evID[(i*7919)%len(x.evID)]
			if _, ok := x.Lookup(id); !ok {
				b.Fatal("id not found")
			}
		}
	})
	b.Run("baseline-map", func(b *testing.B) {
		for i := range b.N {
			id := x.evID[(i*7919)%len(x.evID)]
			if _, ok := ids[id]; !ok {
				b.Fatal("id not found")
			}
		}
	})
}

// BenchmarkContains asks whether events are in a stream of 1M links (a projection), against
// a Go map of the stream's events.
func BenchmarkContains(b *testing.B) {
	const n = 1_000_000
	x := New()
	in := make(map[uint64]struct{}, n)
	for i := range uint64(n) {
		x.AddEvent(2*i+1, testID(i), "Order$1", "T")
		x.AddLink(2*i+2, "All$orders", 2*i+1)
		in[2*i+1] = struct{}{}
	}
	b.Run("index", func(b *testing.B) {
		for i := range b.N {
			x.Contains("All$orders", uint64(i%(2*n)))
		}
	})
	b.Run("baseline-map", func(b *testing.B) {
		for i := range b.N {
			_, ok := in[uint64(i%(2*n))]
			_ = ok
		}
	})
}

// BenchmarkRelations asks the budget workload's index, with a causation parent for every
// other event, for the streams linked events are in and the events events caused,
// against Go maps holding the same answers.
func BenchmarkRelations(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1M-event index")
	}
	x := buildBenchIndex(benchStreamNames(budgetStreams), budgetEvents, 2)
	linked := make(map[uint64][]string)
	caused := make(map[uint64][]uint64)
	for _, nd := range x.linked.nodes {
		linked[nd.key] = append(linked[nd.key], x.streams[nd.val].name)
	}
	for _, nd := range x.caused.nodes {
		caused[nd.key] = append(caused[nd.key], x.evPos[nd.val])
	}
	events := make([]uint64, 0, len(linked))
	for pos := range linked {
		events = append(events, pos)
	}
	var names []string
	var positions []uint64
	b.Run("LinkedInto", func(b *testing.B) {
		for i := range b.N {
			names = x.LinkedInto(names[:0], events[i%len(events)])
		}
	})
	b.Run("baseline-map-of-streams", func(b *testing.B) {
		for i := range b.N {
			names = append(names[:0], linked[events[i%len(events)]]...)
		}
	})
	b.Run("Caused", func(b *testing.B) {
		for i := range b.N {
			positions = x.Caused(positions[:0], x.evPos[(i*7919)%len(x.evPos)], 0)
		}
	})
	b.Run("baseline-map-of-caused", func(b *testing.B) {
		for i := range b.N {
			positions = append(positions[:0], caused[x.evPos[(i*7919)%len(x.evPos)]]...)
		}
	})
}
