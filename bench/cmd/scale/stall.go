package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmd-dev/pmd"
	"golang.org/x/sys/unix"
)

type dist struct {
	N     int     `json:"n"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Over  int     `json:"over_50ms"`
	Total float64 `json:"-"`
}

func distOf(ms []float64) dist {
	sort.Float64s(ms)
	d := dist{N: len(ms), P50: percentile(ms, 50), P99: percentile(ms, 99), P999: percentile(ms, 99.9)}
	if len(ms) > 0 {
		d.Max = ms[len(ms)-1]
	}
	for _, x := range ms {
		if x > 50 {
			d.Over++
		}
	}
	return d
}

type slowAppend struct {
	AtS          float64 `json:"at_s"`
	MS           float64 `json:"ms"`
	CommitCover  float64 `json:"commit_cover"`  // share of the append's time the log spent in commits (write+fsync)
	MaxCommitMS  float64 `json:"max_commit_ms"` // longest commit overlapping it
	MaxSyncMS    float64 `json:"max_sync_ms"`   // longest fsync of the log's (CommitInfo.Sync) in a commit overlapping it
	MaxProbeMS   float64 `json:"max_probe_ms"`  // longest probe fdatasync overlapping it
	ExplainedBy  string  `json:"explained_by,omitempty"`
	ProbeRunning bool    `json:"-"`
}

type stallResult struct {
	Cmd          string       `json:"cmd"`
	Events       int64        `json:"events"`
	Writers      int          `json:"writers"`
	Seconds      float64      `json:"seconds"`
	WaitedScrubS float64      `json:"waited_for_scrub_s,omitempty"`
	EventsPerSec float64      `json:"events_per_sec"`
	Append       dist         `json:"append"`
	Commit       dist         `json:"commit"`
	Probe        dist         `json:"probe_fdatasync"`
	ByProbe      int          `json:"over_50ms_explained_by_probe"`
	BySync       int          `json:"over_50ms_explained_by_log_fsync"`
	ByCommits    int          `json:"over_50ms_explained_by_commits_only"`
	Unexplained  int          `json:"unexplained_over_50ms"`
	Slow         []slowAppend `json:"slow,omitempty"`
	SlowCommits  []slowCommit `json:"slow_commits,omitempty"` // commits over 50 ms
}

const defaultProbeEvery = 10 * time.Millisecond

type span struct {
	start, end time.Duration // since the run's start
	records    int64         // for commits: log records the run wrote before this commit
	sync       time.Duration // for commits: the time spent in fsync (CommitInfo.Sync)
}

type slowCommit struct {
	AtS     float64 `json:"at_s"`
	MS      float64 `json:"ms"`
	SyncMS  float64 `json:"sync_ms"`        // of which the log's fsync
	Records int64   `json:"records_before"` // records this run wrote before it (a segment holds about 50k)
}

// cmdStall runs fsyncing writers against a store for a while and reports every append's
// latency beside the store's commit durations (Options.OnCommit) and a parallel
// fdatasync probe on a file in the same file system. With -base, it first runs the same
// in a fresh process on the baseline store, then on -dir, each in its own process.
func cmdStall(args []string) error {
	fs := flag.NewFlagSet("stall", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	base := fs.String("base", "", "baseline store (e.g. 100k events): run it first, in a child")
	writers := fs.Int("writers", 16, "concurrent writers")
	seconds := fs.Float64("seconds", 60, "how long to append")
	probeEvery := fs.Duration("probe-every", defaultProbeEvery, "pause between probe fdatasyncs")
	waitScrub := fs.Bool("wait-scrub", false, "start writing once the background scrub of the log (Store.Scrubbed) is done")
	fs.Parse(args)
	if *base != "" {
		return stallPair(*base, *dir, *writers, *seconds, *probeEvery, *waitScrub)
	}
	res, err := stall(*dir, *writers, time.Duration(*seconds*float64(time.Second)), *probeEvery, *waitScrub)
	if err != nil {
		return err
	}
	printJSON(res)
	return nil
}

func stallPair(base, dir string, writers int, seconds float64, probeEvery time.Duration, waitScrub bool) error {
	var rs [2]stallResult
	for i, d := range []string{base, dir} {
		if err := runChild(&rs[i], "stall", "-dir", d, "-writers", fmt.Sprint(writers),
			"-seconds", fmt.Sprint(seconds), "-probe-every", probeEvery.String(), fmt.Sprintf("-wait-scrub=%v", waitScrub)); err != nil {
			return err
		}
		printJSON(rs[i])
	}
	printJSON(map[string]any{"cmd": "stall-ratio", "base_events": rs[0].Events, "events": rs[1].Events,
		"p999_ratio": rs[1].Append.P999 / rs[0].Append.P999, "p99_ratio": rs[1].Append.P99 / rs[0].Append.P99,
		"max_ratio": rs[1].Append.Max / rs[0].Append.Max})
	return nil
}

func stall(dir string, writers int, d time.Duration, probeEvery time.Duration, waitScrub bool) (stallResult, error) {
	st, err := readState(dir)
	if err != nil {
		return stallResult{}, err
	}
	unix.Sync()
	var t0 time.Time
	var cmu sync.Mutex
	var commits []span
	var recs int64
	var scrubRate int64 // the default pace, as in production
	if waitScrub {
		scrubRate = -1 // the run waits for it: as fast as it goes
	}
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet(), ScrubBytesPerSecond: scrubRate, OnCommit: func(c pmd.CommitInfo) {
		end := time.Since(t0)
		cmu.Lock()
		commits = append(commits, span{end - c.Duration, end, recs, c.Sync})
		recs += int64(c.Records)
		cmu.Unlock()
	}})
	if err != nil {
		return stallResult{}, err
	}
	// By default the writers start at once, while the open's background scrub reads the
	// whole log, as they would in production.
	var scrubS float64
	if waitScrub {
		t := time.Now()
		<-s.Scrubbed()
		scrubS = time.Since(t).Seconds()
	}
	t0 = time.Now()
	var stop atomic.Bool
	var probes []span
	probeDone := make(chan error, 1)
	go func() { probeDone <- probe(filepath.Dir(strings.TrimRight(dir, "/")), probeEvery, t0, &stop, &probes) }()
	lat := make([][]span, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				a := time.Since(t0)
				if _, err := s.Append(context.Background(), fmt.Sprintf("Stall$%d-%d-%d", os.Getpid(), w, i/10), pmd.Any,
					pmd.EventData{Type: "OrderPlaced", Data: payload}); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], span{start: a, end: time.Since(t0)})
			}
		}(w)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	secs := time.Since(t0).Seconds()
	if err := <-probeDone; err != nil {
		s.Close()
		return stallResult{}, err
	}
	close(errs)
	if err := <-errs; err != nil {
		s.Close()
		return stallResult{}, err
	}
	if err := s.Close(); err != nil {
		return stallResult{}, err
	}
	res := stallResult{Cmd: "stall", Events: st.Loaded, Writers: writers, Seconds: secs, WaitedScrubS: scrubS}
	var all []span
	for _, l := range lat {
		all = append(all, l...)
	}
	res.EventsPerSec = float64(len(all)) / secs
	ms := func(sp []span) []float64 {
		out := make([]float64, len(sp))
		for i, x := range sp {
			out[i] = float64(x.end-x.start) / 1e6
		}
		return out
	}
	res.Append, res.Commit, res.Probe = distOf(ms(all)), distOf(ms(commits)), distOf(ms(probes))
	var slow []slowAppend
	for _, c := range commits {
		if c.end-c.start > 50*time.Millisecond {
			res.SlowCommits = append(res.SlowCommits, slowCommit{c.start.Seconds(), float64(c.end-c.start) / 1e6, float64(c.sync) / 1e6, c.records})
		}
	}
	for _, a := range all {
		l := a.end - a.start
		if l <= 50*time.Millisecond {
			continue
		}
		sa := slowAppend{AtS: a.start.Seconds(), MS: float64(l) / 1e6}
		var cover time.Duration
		for _, c := range commits {
			if c.end < a.start || c.start > a.end {
				continue
			}
			cover += min(c.end, a.end) - max(c.start, a.start)
			sa.MaxCommitMS = max(sa.MaxCommitMS, float64(c.end-c.start)/1e6)
			sa.MaxSyncMS = max(sa.MaxSyncMS, float64(c.sync)/1e6)
		}
		for _, p := range probes {
			if p.end < a.start || p.start > a.end {
				continue
			}
			sa.MaxProbeMS = max(sa.MaxProbeMS, float64(p.end-p.start)/1e6)
		}
		sa.CommitCover = float64(cover) / float64(l)
		// Explained by the disk: a probe fdatasync on the same file system took at least
		// half as long as the append ("probe"), or one of the log's own fsyncs under it did
		// ("fsync": the disk's latency for the log's file, measured on the write path);
		// or else the log spent at least half of the append's time in commits ("commits":
		// pmd's own time inside a commit, outside its fsync); or neither.
		switch {
		case sa.MaxProbeMS >= sa.MS/2:
			sa.ExplainedBy = "probe"
			res.ByProbe++
		case sa.MaxSyncMS >= sa.MS/2:
			sa.ExplainedBy = "fsync"
			res.BySync++
		case sa.CommitCover >= 0.5:
			sa.ExplainedBy = "commits"
			res.ByCommits++
		default:
			res.Unexplained++
		}
		slow = append(slow, sa)
	}
	// Keep the report short: the 10 slowest unexplained ones, then the 10 slowest others.
	sort.Slice(slow, func(i, j int) bool { return slow[i].MS > slow[j].MS })
	var rest []slowAppend
	for _, sa := range slow {
		if sa.ExplainedBy == "" && len(res.Slow) < 10 {
			res.Slow = append(res.Slow, sa)
		} else if sa.ExplainedBy != "" && len(rest) < 10 {
			rest = append(rest, sa)
		}
	}
	res.Slow = append(res.Slow, rest...)
	return res, nil
}

// probe appends 4 KiB to a file in dir and fdatasyncs it, again and again, recording
// each fdatasync's duration, until stop.
func probe(dir string, every time.Duration, t0 time.Time, stop *atomic.Bool, out *[]span) error {
	f, err := os.CreateTemp(dir, ".fsync-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	for !stop.Load() {
		if _, err := f.Write(buf); err != nil {
			return err
		}
		a := time.Since(t0)
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return err
		}
		*out = append(*out, span{start: a, end: time.Since(t0)})
		time.Sleep(every)
	}
	return nil
}
