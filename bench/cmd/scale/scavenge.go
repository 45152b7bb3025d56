package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
)

// cmdScavenge measures a scavenge (issue 14's targets): a store of -size events in 1,000
// streams, half of which are deleted so that half the events are dead, is scavenged
// without a bound (its rate, and the share of the dead events' bytes it frees), then,
// on a copy, 16 fsyncing writers append for -seconds alone and again while a throttled
// scavenge runs (their p99.9 against each other).
func cmdScavenge(args []string) error {
	fs := flag.NewFlagSet("scavenge", flag.ExitOnError)
	dir := fs.String("dir", "/tmp/pmd-scavenge", "work directory (removed first and after)")
	size := fs.String("size", "1M", "events in the store")
	seconds := fs.Float64("seconds", 15, "seconds of appends, alone and under the scavenge")
	writers := fs.Int("writers", 16, "concurrent fsyncing writers")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the unbounded scavenge to this file")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	os.RemoveAll(*dir)
	defer os.RemoveAll(*dir)
	a, b := filepath.Join(*dir, "a"), filepath.Join(*dir, "b")
	dead, err := fillDead(a, n)
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", a, b).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the store: %v: %s", err, out)
	}

	// Unbounded: how fast, and how much of the dead events' bytes it frees.
	s, err := pmd.Open(a, pmd.Options{Logger: quiet(), NoScrub: true})
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	res, err := s.Scavenge(context.Background(), pmd.ScavengeOptions{BytesPerSecond: -1})
	took := time.Since(start)
	pprof.StopCPUProfile()
	s.Close()
	if err != nil {
		return err
	}
	printJSON(map[string]any{
		"cmd": "scavenge", "events": n, "dead_events": dead.events, "dead_bytes": dead.bytes,
		"segments": res.Segments, "rewritten": res.Rewritten, "gone": res.Gone,
		"bytes_before": res.BytesBefore, "bytes_after": res.BytesAfter, "freed": res.Freed(),
		"freed_of_dead": float64(res.Freed()) / float64(dead.bytes),
		"seconds":       took.Seconds(), "mb_per_s": float64(res.BytesBefore) / 1e6 / took.Seconds(),
	})

	// Writers alone, then writers beside a throttled scavenge, on the copy.
	s, err = pmd.Open(b, pmd.Options{Logger: quiet(), NoScrub: true})
	if err != nil {
		return err
	}
	defer s.Close()
	d := time.Duration(*seconds * float64(time.Second))
	alone, err := appendFor(s, *writers, d, nil)
	if err != nil {
		return err
	}
	var sres pmd.ScavengeResult
	var serr error
	var stook time.Duration
	beside, err := appendFor(s, *writers, d, func(ctx context.Context) {
		start := time.Now()
		sres, serr = s.Scavenge(ctx, pmd.ScavengeOptions{})
		stook = time.Since(start)
	})
	if err != nil {
		return err
	}
	if serr != nil && !errors.Is(serr, context.Canceled) && !errors.Is(serr, context.DeadlineExceeded) {
		return serr // a scavenge the window's end cut short is measured as far as it got
	}
	printJSON(map[string]any{
		"cmd": "scavenge-writers", "writers": *writers, "seconds": *seconds,
		"alone": alone, "beside_scavenge": beside,
		"p999_ratio":          beside.P999 / alone.P999,
		"scavenge_rewritten":  sres.Rewritten,
		"scavenge_mb_per_s":   float64(sres.BytesBefore) / 1e6 / stook.Seconds(),
		"scavenge_finished_s": stook.Seconds(),
		"scavenge_finished":   serr == nil,
	})
	return nil
}

type deadBytes struct {
	events int64
	bytes  int64
}

// fillDead loads n events of 256 bytes into 1,000 streams with syncing off, deletes every
// odd stream, and returns how many events died and how many log bytes they take.
func fillDead(dir string, n int64) (deadBytes, error) {
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet(), NoScrub: true})
	if err != nil {
		return deadBytes{}, err
	}
	ctx := context.Background()
	const streams = 1000
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(10) - 10
				if i >= n {
					return
				}
				batch := make([]pmd.EventData, 10)
				for k := range batch {
					batch[k] = pmd.EventData{Type: "OrderPlaced", Data: payload}
				}
				if _, err := s.Append(ctx, "Order$"+strconv.FormatInt((i/10)%streams, 10), pmd.Any, batch...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		s.Close()
		return deadBytes{}, err
	}
	before := s.Stats().LastPosition
	var logBytes int64
	filepath.Walk(filepath.Join(dir, "log"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Ext(path) == "" {
			logBytes += info.Size()
		}
		return nil
	})
	for i := 1; i < streams; i += 2 {
		if err := s.DeleteStream(ctx, "Order$"+strconv.Itoa(i), pmd.Any); err != nil {
			s.Close()
			return deadBytes{}, err
		}
	}
	// Every event has the same size: the dead half holds half the bytes.
	dead := deadBytes{events: int64(before) / 2, bytes: logBytes / 2}
	// Seal what was loaded: a scavenge leaves the newest segment alone.
	filler := make([]pmd.EventData, 100)
	for i := range filler {
		filler[i] = pmd.EventData{Type: "Filler", Data: payload}
	}
	for range 700 { // about 25 MB
		if _, err := s.Append(ctx, "Filler", pmd.Any, filler...); err != nil {
			s.Close()
			return deadBytes{}, err
		}
	}
	return dead, s.Close()
}

// appendFor runs writers fsyncing appenders on s for d, with beside running alongside
// (cancelled at the end if it has not returned), and returns their latency distribution.
func appendFor(s *pmd.Store, writers int, d time.Duration, beside func(ctx context.Context)) (dist, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var besideDone sync.WaitGroup
	if beside != nil {
		besideDone.Add(1)
		go func() { defer besideDone.Done(); beside(ctx) }()
	}
	var mu sync.Mutex
	var all []float64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms []float64
			for i := 0; ctx.Err() == nil; i++ {
				t := time.Now()
				_, err := s.Append(ctx, fmt.Sprintf("W%d$%d", w, i/10), pmd.Any, pmd.EventData{Type: "W", Data: payload})
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					break
				}
				ms = append(ms, float64(time.Since(t).Microseconds())/1000)
			}
			mu.Lock()
			all = append(all, ms...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	cancel()
	besideDone.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return dist{}, err
	}
	return distOf(all), nil
}
