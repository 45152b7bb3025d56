package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pmd-dev/pmd"
)

// openResult is what the open child prints.
type openResult struct {
	Cmd        string  `json:"cmd"`
	Events     int64   `json:"events"`
	CacheMiB   int64   `json:"cache_mib"`
	OpenMS     float64 `json:"open_ms"`
	RSSOpenMB  float64 `json:"rss_open_mb"`
	HWMOpenMB  float64 `json:"hwm_open_mb"`
	Replayed   int     `json:"replayed_streams"`
	RSSReplay  float64 `json:"rss_replay_mb"`
	HWMReplay  float64 `json:"hwm_replay_mb"`
	ReplayP50  float64 `json:"replay_p50_us"`
	ReplayP99  float64 `json:"replay_p99_us"`
	Problems   int     `json:"problems"`
	RSSStartMB float64 `json:"rss_start_mb"`
	HeapMB     float64 `json:"go_heap_inuse_open_mb"` // Go heap in use after open (a GC first)
	TailMB     float64 `json:"tail_segment_mb"`       // newest segment, which tidwall/wal holds in memory
	OffsetsMB  float64 `json:"offsets_mb"`            // the log's offset sidecars, loaded at open
	IndexMB    float64 `json:"index_disk_mb"`         // the index directory on disk
}

// storeSizes returns the newest segment's size, the sidecars' and the index's, in MB.
func storeSizes(dir string) (tail, offsets, index float64) {
	segs, _ := filepath.Glob(filepath.Join(dir, "log", "[0-9]*[0-9]"))
	sort.Strings(segs)
	if len(segs) > 0 {
		if fi, err := os.Stat(segs[len(segs)-1]); err == nil {
			tail = float64(fi.Size()) / 1e6
		}
	}
	sides, _ := filepath.Glob(filepath.Join(dir, "log", "offsets", "*.offsets"))
	for _, f := range sides {
		if fi, err := os.Stat(f); err == nil {
			offsets += float64(fi.Size()) / 1e6
		}
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "index", "*"))
	for _, f := range ssts {
		if fi, err := os.Stat(f); err == nil {
			index += float64(fi.Size()) / 1e6
		}
	}
	return tail, offsets, index
}

// cmdOpen is run as a fresh child process: it opens the store, reports how long that
// took and the process's RSS, then replays streams and reports RSS again.
func cmdOpen(args []string) error {
	fs := flag.NewFlagSet("open", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	cacheMiB := fs.Int64("cache", 0, "Options.CacheSize in MiB; 0 is pmd's default (64 MiB)")
	streams := fs.Int("streams", 10000, "order streams to replay after open (random), plus the process streams")
	noScrub := fs.Bool("noscrub", false, "Options.NoScrub")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of pmd.Open to this file")
	fs.Parse(args)
	st, err := readState(*dir)
	if err != nil {
		return err
	}
	res := openResult{Cmd: "open", Events: st.Loaded, CacheMiB: *cacheMiB, RSSStartMB: rssMB("VmRSS")}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	s, err := pmd.Open(*dir, pmd.Options{CacheSize: *cacheMiB << 20, Logger: stderrLogger(), NoScrub: *noScrub})
	if err != nil {
		return err
	}
	res.OpenMS = float64(time.Since(start).Microseconds()) / 1e3
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	res.RSSOpenMB, res.HWMOpenMB = rssMB("VmRSS"), rssMB("VmHWM")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMB = float64(ms.HeapInuse) / 1e6
	res.TailMB, res.OffsetsMB, res.IndexMB = storeSizes(*dir)
	fmt.Fprintf(os.Stderr, "open: %.1f ms, RSS %.1f MB\n", res.OpenMS, res.RSSOpenMB)
	names := replayNames(st.Loaded, *streams)
	var lat []float64
	for _, name := range names {
		t := time.Now()
		if _, err := replay(s, name); err != nil {
			return err
		}
		lat = append(lat, float64(time.Since(t).Microseconds()))
	}
	sort.Float64s(lat)
	res.Replayed = len(names)
	res.ReplayP50, res.ReplayP99 = percentile(lat, 50), percentile(lat, 99)
	res.RSSReplay, res.HWMReplay = rssMB("VmRSS"), rssMB("VmHWM")
	res.Problems = len(s.Problems())
	if err := s.Close(); err != nil {
		return err
	}
	printJSON(res)
	return nil
}

// replayNames is the process streams of the store's size plus n random order streams.
func replayNames(loaded int64, n int) []string {
	_, names := procStreams(loaded)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n && loaded > 0; i++ {
		names = append(names, streamOf(r.Int64N(loaded)))
	}
	return names
}

func replay(s *pmd.Store, stream string) (int, error) {
	n := 0
	for _, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
		if err != nil {
			return n, fmt.Errorf("%s: %w", stream, err)
		}
		n++
	}
	return n, nil
}

// rssMB reads a field of /proc/self/status (VmRSS, VmHWM) in MB (10^6 bytes).
func rssMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			fields := strings.Fields(line)
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb * 1024 / 1e6
		}
	}
	return -1
}

// runChild runs this program with args and decodes the last JSON line it prints.
func runChild(out any, args ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%v: %w", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return json.Unmarshal([]byte(lines[len(lines)-1]), out)
}

// cmdMem opens the store in fresh processes, once per cache size and each -runs times,
// and prints each child's figures.
func cmdMem(args []string) error {
	fs := flag.NewFlagSet("mem", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	caches := fs.String("caches", "16,64,256", "CacheSize values in MiB")
	runs := fs.Int("runs", 1, "opens per cache size")
	streams := fs.Int("streams", 10000, "random order streams replayed after open")
	fs.Parse(args)
	return mem(*dir, *caches, *runs, *streams)
}

func mem(dir, caches string, runs, streams int) error {
	for r := 0; r < runs; r++ {
		for _, c := range strings.Split(caches, ",") {
			var res openResult
			if err := runChild(&res, "open", "-dir", dir, "-cache", c, "-streams", strconv.Itoa(streams)); err != nil {
				return err
			}
			res.Cmd = "mem"
			printJSON(res)
		}
	}
	return nil
}
