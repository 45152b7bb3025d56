// Command appendbench appends 256-byte events to a fresh store with N concurrent writers
// for a fixed time and prints the rate, and the process's CPU time (user and system, from
// getrusage) per counted event, as one line of JSON. The CPU per event depends far less on
// what else runs on the machine than the rate does. It uses only the public API
// that pmd has had since before the index moved to disk (pmd.Open with Options{NoSync,
// Logger}, Append, Close), so the same source builds against an older checkout: see
// "Appends" in bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pmd-dev/pmd"
)

func main() {
	writers := flag.Int("writers", 16, "concurrent writers, each appending to its own streams")
	seconds := flag.Float64("seconds", 10, "how long to append, counted")
	warmup := flag.Float64("warmup", 0, "how long to append before counting: the store's first seconds (its caches and memtables filling) are not its steady state")
	dir := flag.String("dir", "", "data directory (created; must not hold a store)")
	sync := flag.Bool("sync", true, "fsync each commit (false sets Options.NoSync)")
	label := flag.String("label", "", "copied into the output")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the appends to this file")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "appendbench: -dir is required")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "appendbench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "appendbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := run(*dir, *writers, time.Duration(*warmup*float64(time.Second)), time.Duration(*seconds*float64(time.Second)), !*sync)
	if err != nil {
		fmt.Fprintln(os.Stderr, "appendbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	res.Label = *label
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "appendbench: print the result:", err)
		os.Exit(1)
	}
}

type result struct {
	Label        string  `json:"label,omitempty"`
	Writers      int     `json:"writers"`
	Sync         bool    `json:"sync"`
	Events       int64   `json:"events"`
	Warmup       float64 `json:"warmup_seconds,omitempty"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// CPUPerEvent is the process's CPU time over the counted seconds, per counted event;
	// 0 when none was counted (scale appendcmp then leaves out its CPU figures).
	CPUPerEvent float64 `json:"cpu_us_per_event"`
}

var payload = map[string]any{"order_id": "0000000042", "pad": strings.Repeat("p", 226)}

func run(dir string, writers int, warmup, d time.Duration, noSync bool) (result, error) {
	s, err := pmd.Open(dir, pmd.Options{NoSync: noSync, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return result{}, err
	}
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				stream := fmt.Sprintf("Order$%d-%d", w, i/10)
				if _, err := s.Append(context.Background(), stream, pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: payload}); err != nil {
					errs <- err
					return
				}
				n.Add(1)
			}
		}(w)
	}
	time.Sleep(warmup)
	cpu0 := cpuNow()
	start, from := time.Now(), n.Load()
	time.Sleep(d)
	counted := n.Load() - from
	cpu := cpuNow() - cpu0
	secs := time.Since(start).Seconds()
	stop.Store(true)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		s.Close()
		return result{}, err
	}
	if err := s.Close(); err != nil {
		return result{}, err
	}
	return tally(writers, noSync, warmup, counted, secs, cpu), nil
}

// tally is the result of a run that counted events over secs seconds, in which the
// process spent cpu.
func tally(writers int, noSync bool, warmup time.Duration, counted int64, secs float64, cpu time.Duration) result {
	res := result{Writers: writers, Sync: !noSync, Warmup: warmup.Seconds(), Events: counted, Seconds: secs, EventsPerSec: float64(counted) / secs}
	if counted > 0 {
		// With none counted (writers stalled for the whole run) the quotient is +Inf or
		// NaN, which JSON cannot hold: Encode would fail and nothing be printed.
		res.CPUPerEvent = cpu.Seconds() * 1e6 / float64(counted)
	}
	return res
}

// cpuNow is the process's user and system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
