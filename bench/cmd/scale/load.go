package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
)

// cmdLoad appends generated events (fsync off) until the store holds -to of them.
func cmdLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	to := fs.String("to", "10M", "events the store should hold")
	writers := fs.Int("writers", 16, "concurrent writers")
	fs.Parse(args)
	target, err := parseSize(*to)
	if err != nil {
		return err
	}
	return load(*dir, target, *writers)
}

func load(dir string, target int64, writers int) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	st, err := readState(dir)
	if err != nil {
		return err
	}
	if st.Loaded >= target {
		fmt.Fprintf(os.Stderr, "load: %s already holds %s events\n", dir, sizeName(st.Loaded))
		return nil
	}
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet(), NoScrub: true})
	if err != nil {
		return err
	}
	start, from := time.Now(), st.Loaded
	var next atomic.Int64
	next.Store(from)
	// Events are taken in order; done counts how many below the high-water mark are
	// written, so a stop after wg.Wait leaves no gap.
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	ctx := context.Background()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= target {
					return
				}
				if _, err := s.Append(ctx, streamOf(i), pmd.Any, pmd.EventData{Type: "OrderPlaced", Data: payload}); err != nil {
					errs <- fmt.Errorf("event %d: %w", i, err)
					next.Store(target) // stop the others
					return
				}
			}
		}()
	}
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				n := min(next.Load(), target)
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "load: %s events, %.0f events/s\n", sizeName(n), float64(n-from)/el)
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	close(errs)
	if err := <-errs; err != nil {
		s.Close()
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	el := time.Since(start)
	if err := writeState(dir, state{Loaded: target}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "load: %s now holds %s events; loaded %d in %s (%.0f events/s)\n",
		dir, sizeName(target), target-from, el.Round(time.Second), float64(target-from)/el.Seconds())
	printJSON(map[string]any{"cmd": "load", "dir": dir, "events": target, "added": target - from,
		"seconds": el.Seconds(), "events_per_sec": float64(target-from) / el.Seconds()})
	return nil
}
