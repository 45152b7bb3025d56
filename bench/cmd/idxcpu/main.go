// Command idxcpu is a throw-away measurement of the index's CPU per event: batches of 15
// AddEvents over streams of 10 events each (16 writers' worth, as appendbench), with the
// committer's state read of each new stream (handed to the batch), a Flush every 100,000 events.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	dir := flag.String("dir", "", "fresh dir")
	events := flag.Int("events", 300000, "events")
	label := flag.String("label", "", "label")
	reads := flag.Int("reads", 0, "after the appends, time this many Versions reads of old and of new streams")
	flag.Parse()
	x, err := index.Open(*dir, index.Options{})
	if err != nil {
		panic(err)
	}
	names := make([]string, 0, *events/10+16)
	for i := 0; i < *events/10+16; i++ {
		names = append(names, fmt.Sprintf("Order$%d-%d", i%16, i/16))
	}
	ids := make([]uuid.UUID, *events)
	for i := range ids {
		ids[i] = uuid.New()
	}
	b := x.NewBatch()
	cpu0, t0 := cpuNow(), time.Now()
	pos := uint64(0)
	for i := 0; i < *events; i++ {
		w, c := i%16, i/16
		stream := names[(c/10)*16+w]
		if c%10 == 0 {
			// The committer's read of a new stream, handed to the applier's batch.
			_, l, err := x.Load(stream)
			if err != nil {
				panic(err)
			}
			b.Know(stream, l)
		}
		pos++
		if _, err := b.AddEvent(pos, ids[i], stream, "OrderPlaced"); err != nil {
			panic(err)
		}
		if (i+1)%15 == 0 {
			if err := x.Apply(b); err != nil {
				panic(err)
			}
		}
		if (i+1)%100000 == 0 {
			if err := x.Flush(); err != nil {
				panic(err)
			}
		}
	}
	if err := x.Apply(b); err != nil {
		panic(err)
	}
	if *reads > 0 {
		nStreams := (*events / 160) * 16 // streams complete at the end
		p50 := func(lo, hi int) time.Duration {
			var ds []time.Duration
			for i := 0; i < *reads; i++ {
				name := names[lo+rand.IntN(hi-lo)]
				t := time.Now()
				_, es, err := x.Versions(nil, name, 0, false, 0)
				ds = append(ds, time.Since(t))
				if err != nil || len(es) == 0 {
					panic(fmt.Sprint(name, err, len(es)))
				}
			}
			slices.Sort(ds)
			return ds[len(ds)/2]
		}
		old := p50(0, nStreams/4)
		recent := p50(nStreams-nStreams/8, nStreams)
		fmt.Printf("READS label=%s old_p50_us=%.2f recent_p50_us=%.2f\n", *label, old.Seconds()*1e6, recent.Seconds()*1e6)
	}
	if err := x.Flush(); err != nil {
		panic(err)
	}
	if err := x.Close(); err != nil {
		panic(err)
	}
	cpu := cpuNow() - cpu0
	fmt.Printf("IDXCPU label=%s events=%d cpu_us_per_event=%.2f wall_s=%.2f\n", *label, *events, cpu.Seconds()*1e6/float64(*events), time.Since(t0).Seconds())
}
