package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/pmd-dev/pmd"
	"golang.org/x/sys/unix"
)

type replayResult struct {
	Cmd        string  `json:"cmd"`
	Events     int64   `json:"events"`
	Plan       string  `json:"plan"`
	Streams    int     `json:"streams"`
	WarmN      int     `json:"warm_n"`
	WarmP50    float64 `json:"warm_p50_us"`
	WarmP99    float64 `json:"warm_p99_us"`
	ColdN      int     `json:"cold_n"`
	ColdP50    float64 `json:"cold_p50_us,omitempty"`
	ColdP99    float64 `json:"cold_p99_us,omitempty"`
	ColdMax    float64 `json:"cold_max_us,omitempty"`
	ColdOpenMS float64 `json:"cold_open_ms,omitempty"`
	ColdFirst  float64 `json:"cold_first_us,omitempty"`
	ColdSkip   string  `json:"cold_skipped,omitempty"`
}

// cmdReplay reads the 100 process streams of the store's size (10 events each, a tenth
// of the log apart): warm, many passes; then cold, dropping the page cache before each.
func cmdReplay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	passes := fs.Int("passes", 20, "warm passes over the process streams")
	cold := fs.Int("cold", 30, "cold replays, each after dropping the page cache (needs root)")
	scrub := fs.Bool("scrub", false, "leave the background scrub on (it reads the whole log, refilling the page cache)")
	fs.Parse(args)
	st, err := readState(*dir)
	if err != nil {
		return err
	}
	plan, names := procStreams(st.Loaded)
	if plan == 0 {
		return fmt.Errorf("%s holds %d events: no process streams below 100k", *dir, st.Loaded)
	}
	res := replayResult{Cmd: "replay", Events: st.Loaded, Plan: sizeName(plan), Streams: len(names)}
	opts := pmd.Options{Logger: quiet(), NoScrub: !*scrub}

	// Cold first: drop the page cache, open, replay one stream; then drop before each.
	if err := dropCaches(); err != nil {
		res.ColdSkip = err.Error()
		fmt.Fprintln(os.Stderr, "replay: cold runs skipped:", err)
	}
	var coldLat []float64
	if res.ColdSkip == "" && *cold > 0 {
		t := time.Now()
		s, err := pmd.Open(*dir, opts)
		if err != nil {
			return err
		}
		res.ColdOpenMS = float64(time.Since(t).Microseconds()) / 1e3
		for i := 0; i < *cold; i++ {
			if i > 0 {
				if err := dropCaches(); err != nil {
					return err
				}
			}
			t := time.Now()
			if n, err := replay(s, names[i%len(names)]); err != nil || n != 10 {
				return fmt.Errorf("cold replay: %d events, %v", n, err)
			}
			coldLat = append(coldLat, float64(time.Since(t).Microseconds()))
		}
		res.ColdFirst = coldLat[0]
		if err := s.Close(); err != nil {
			return err
		}
	}
	sort.Float64s(coldLat)
	res.ColdN = len(coldLat)
	if len(coldLat) > 0 {
		res.ColdP50, res.ColdP99, res.ColdMax = percentile(coldLat, 50), percentile(coldLat, 99), coldLat[len(coldLat)-1]
	}

	s, err := pmd.Open(*dir, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, name := range names { // warm up
		if n, err := replay(s, name); err != nil || n != 10 {
			return fmt.Errorf("replay %s: %d events, %v", name, n, err)
		}
	}
	var warm []float64
	for p := 0; p < *passes; p++ {
		for _, name := range names {
			t := time.Now()
			if _, err := replay(s, name); err != nil {
				return err
			}
			warm = append(warm, float64(time.Since(t).Nanoseconds())/1e3)
		}
	}
	sort.Float64s(warm)
	res.WarmN, res.WarmP50, res.WarmP99 = len(warm), percentile(warm, 50), percentile(warm, 99)
	printJSON(res)
	return nil
}

// dropCaches writes back dirty pages and drops the whole page cache (root only).
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}
