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
	return load(*dir, (target+9)/10*10, *writers)
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
	// Writers take blocks of 10 events in order; after wg.Wait every block below target
	// is written.
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	ctx := context.Background()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []pmd.EventData
			for {
				// A block of 10 events: one append for its order stream, one for each
				// process-stream event in it.
				b := next.Add(10) - 10
				if b >= target {
					return
				}
				batch = batch[:0]
				for i := b; i < b+10 && i < target; i++ {
					e := pmd.EventData{Type: "OrderPlaced", Data: payload}
					name := streamOf(i)
					if procSlots[i] == "" {
						batch = append(batch, e)
						continue
					}
					if _, err := s.Append(ctx, name, pmd.Any, e); err != nil {
						errs <- fmt.Errorf("event %d: %w", i, err)
						next.Store(target) // stop the others
						return
					}
				}
				if len(batch) == 0 {
					continue
				}
				if _, err := s.Append(ctx, orderStream(b), pmd.Any, batch...); err != nil {
					errs <- fmt.Errorf("events %d-: %w", b, err)
					next.Store(target)
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
