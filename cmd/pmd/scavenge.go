package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/bytesize"
	"github.com/spf13/cobra"
)

func newScavengeCmd(stdout, stderr io.Writer) *cobra.Command {
	var rate string
	cmd := &cobra.Command{
		Use:   "scavenge DIR",
		Short: "reclaim the disk that dead and erased events hold, in a stopped store",
		Long: `Scavenge rewrites the sealed log segments of the stopped store in DIR without the bytes
of dead events (in no stream any more) and without the data of erased ones. No position
changes, each segment is swapped atomically, and a crash at any moment loses nothing.
In a cluster node's directory it records no expiry of events past their max age (that
is a write the cluster must agree on): the leader's next scavenge does.
In a store that has ever erased data, it also removes the quarantines pmd made in DIR
(DIR/quarantine-<UTC time>/ of a log end cut at start, DIR/quarantine-<UTC time>.bin
of pmd repair, and the .bin.pmd-repair.tmp a crashed repair left), which may hold the erased
bytes, and names each: copy a quarantine out of DIR first to keep it (one of a cut
holds acknowledged records the store lost).
A running daemon scavenges on its own schedule (pmd serve --scavenge-every) and on
POST /v1/admin/scavenge.`,
		Args: wantArgs(1, 1, "DIR: the data directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			bps := int64(-1) // no bound
			if rate != "0" {
				var err error
				if bps, err = bytesize.Parse(rate); err != nil {
					return &usageError{"--rate: " + err.Error() + ", or 0 for no bound"}
				}
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			return scavengeDir(cmd.Context(), args[0], bps, sigs, stdout, stderr)
		},
	}
	cmd.Flags().StringVar(&rate, "rate", "128MiB", "bytes of segments read per second, e.g. 64MiB; 0 for no bound")
	return cmd
}

// scavengeDir opens the stopped store in dir (its lock keeps a daemon out), scavenges it
// at rate bytes a second (-1: no bound) and prints what was freed. A signal on sigs
// during the open exits at once; after it, it stops the scavenge.
func scavengeDir(ctx context.Context, dir string, rate int64, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	if err := haveStore(dir); err != nil {
		return err
	}
	// The open cannot stop midway, and can take long (an upgrade, indexing a long log):
	// an interrupt during it exits at once, which is safe, as a crash is (the next open
	// does again what this one did not finish), and nothing is scavenged yet. After
	// it, an interrupt stops the scavenge at the segment under way, which stays as it
	// was (each segment is swapped whole), and the summary says what was done before it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opened atomic.Bool
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		if !opened.Load() {
			fmt.Fprintf(stderr, "pmd scavenge: interrupted while opening %s, before scavenging anything: exiting at once (the log is safe)\n", dir)
			os.Exit(exitFailed)
		}
		cancel()
	}()
	// Open says when it upgrades the directory's format or indexes a long log, and how
	// far it got: long work, which the user should see. After it, the summary below
	// says what the scavenge did, and only warnings are logged.
	level := new(slog.LevelVar)
	s, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), NoScrub: true})
	if err != nil {
		return &exitError{exitTrouble, offlineErr(dir, err)}
	}
	opened.Store(true)
	level.Set(slog.LevelWarn)
	fmt.Fprintf(stderr, "scavenging %s; an interrupt (Ctrl-C) stops it, keeping the segments done\n", dir)
	var bar *progressBar
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		bar = &progressBar{w: f, what: "scavenging"}
	}
	res, err := s.Scavenge(ctx, pmd.ScavengeOptions{BytesPerSecond: rate, Progress: bar.update})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	// A scavenge that fails may have done part of its work first (the segments before a
	// failure, or all but a damaged one, and the quarantines it removed): say what.
	interrupted := err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)
	if err == nil || interrupted || res.Segments > 0 || len(res.Quarantines) > 0 {
		printScavenged(stdout, dir, res)
	}
	switch {
	case interrupted:
		return fmt.Errorf("interrupted: the %d segment(s) above were scavenged, freeing %d bytes; the one under way and those after it are as they were", res.Segments, res.Freed())
	case errors.Is(err, pmd.ErrCorrupt):
		return err // damage found (exitFailed): pmd repair DIR removes it
	case err != nil:
		return &exitError{exitTrouble, err}
	}
	return nil
}

// printScavenged prints what a scavenge of dir did.
func printScavenged(stdout io.Writer, dir string, res pmd.ScavengeResult) {
	fmt.Fprintf(stdout, "%s: %d segment(s) read, %d rewritten: %d events and links removed, %d dead events kept without their data, %d erased; %d bytes freed (%d → %d)\n",
		dir, res.Segments, res.Rewritten, res.Gone, res.DeadKept, res.Erased, res.Freed(), res.BytesBefore, res.BytesAfter)
	for _, q := range res.Quarantines {
		fmt.Fprintf(stdout, "removed the quarantine %s: the store has erased data, which it may hold\n", q)
	}
	if res.Expired > 0 {
		fmt.Fprintf(stdout, "%d stream(s) had events past their max age\n", res.Expired)
	}
	if res.ExpirySkipped {
		fmt.Fprintf(stdout, "%s is a cluster node's: events past their max age were left for the cluster's next scavenge (POST /v1/admin/scavenge on the leader)\n", dir)
	}
}

// scheduleScavenges scavenges store every interval (never if it is 0) until ctx ends;
// the function it returns waits for a scavenge in flight to stop.
func scheduleScavenges(ctx context.Context, store *pmd.Store, every time.Duration, logger *slog.Logger) (wait func()) {
	var wg sync.WaitGroup
	if every <= 0 {
		return wg.Wait
	}
	tick := time.NewTicker(every)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer tick.Stop()
		runScavenges(ctx, store, tick.C, logger, nil)
	}()
	return wg.Wait
}

// runScavenges scavenges store at each tick until ctx ends, logging each result, which
// it also hands to after if set.
func runScavenges(ctx context.Context, store *pmd.Store, ticks <-chan time.Time, logger *slog.Logger, after func(pmd.ScavengeResult, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		res, err := store.Scavenge(ctx, pmd.ScavengeOptions{})
		switch {
		case errors.Is(err, context.Canceled):
			return
		case err != nil:
			logger.Error("scheduled scavenge failed; the next one tries again", "err", err, "freed_bytes", res.Freed(),
				"quarantines_removed", quarantineList(res.Quarantines))
		case len(res.Quarantines) > 0:
			logger.Warn("scheduled scavenge; it removed quarantines: the store has erased data, which they may hold",
				"rewritten", res.Rewritten, "gone", res.Gone, "dead_kept", res.DeadKept, "erased", res.Erased, "freed_bytes", res.Freed(),
				"quarantines_removed", quarantineList(res.Quarantines))
		default:
			logger.Info("scheduled scavenge", "rewritten", res.Rewritten, "gone", res.Gone, "dead_kept", res.DeadKept, "erased", res.Erased, "freed_bytes", res.Freed())
		}
		if after != nil {
			after(res, err)
		}
	}
}

// quarantineList is the paths of the quarantines a scavenge removed, for a log line.
func quarantineList(qs []string) string {
	if len(qs) == 0 {
		return "none"
	}
	return strings.Join(qs, ", ")
}
