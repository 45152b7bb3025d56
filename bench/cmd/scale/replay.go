package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	FloorP50   float64 `json:"cold_floor_p50_us,omitempty"`
	FloorP99   float64 `json:"cold_floor_p99_us,omitempty"`
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
	// The floor under a cold replay, and what the old in-memory index's cold replay
	// cost: 10 preads of 4 KiB, one in each of 10 segment files spread over the log,
	// after dropping the page cache.
	var floor []float64
	if res.ColdSkip == "" {
		segs, _ := filepath.Glob(filepath.Join(*dir, "log", "[0-9]*[0-9]"))
		r := rand.New(rand.NewPCG(3, 4))
		buf := make([]byte, 4096)
		for i := 0; i < *cold && len(segs) > 0; i++ {
			var files []*os.File // opened before the drop, as the store holds its segments open
			var offs []int64
			for j := 0; j < 10; j++ {
				f, err := os.Open(segs[(j*len(segs)/10+i)%len(segs)])
				if err != nil {
					return err
				}
				fi, _ := f.Stat()
				files, offs = append(files, f), append(offs, r.Int64N(max(fi.Size()-4096, 1)))
			}
			if err := dropCaches(); err != nil {
				return err
			}
			t := time.Now()
			for j, f := range files {
				f.ReadAt(buf, offs[j])
			}
			floor = append(floor, float64(time.Since(t).Microseconds()))
			for _, f := range files {
				f.Close()
			}
		}
		sort.Float64s(floor)
		res.FloorP50, res.FloorP99 = percentile(floor, 50), percentile(floor, 99)
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
