package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// cmdAppendCmp runs two builds of bench/cmd/appendbench (an older pmd's and this one's)
// in turns, prev, new, prev, new, ..., each on a fresh store, and prints the medians of
// the rates and of the CPU per event, and the same of the rounds' paired ratios.
func cmdAppendCmp(args []string) error {
	fs := flag.NewFlagSet("appendcmp", flag.ExitOnError)
	prev := fs.String("prev", "", "appendbench built against the previous pmd")
	next := fs.String("new", "", "appendbench built against this pmd")
	writers := fs.String("writers", "16,1", "writer counts")
	rounds := fs.Int("rounds", 5, "runs of each build per writer count")
	seconds := fs.Float64("seconds", 10, "seconds per run, counted")
	warmup := fs.Float64("warmup", 0, "seconds each run appends before it counts")
	work := fs.String("work", os.TempDir(), "where the throw-away stores go")
	fs.Parse(args)
	for _, w := range strings.Split(*writers, ",") {
		rates, cpus := map[string][]float64{}, map[string][]float64{}
		for r := 0; r < *rounds; r++ {
			for _, b := range []struct{ name, bin string }{{"prev", *prev}, {"new", *next}} {
				dir, err := os.MkdirTemp(*work, "appendcmp-")
				if err != nil {
					return err
				}
				cmd := exec.Command(b.bin, "-dir", filepath.Join(dir, "store"), "-writers", w,
					"-seconds", fmt.Sprint(*seconds), "-warmup", fmt.Sprint(*warmup), "-sync=true", "-label", b.name)
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				os.RemoveAll(dir)
				if err != nil {
					return fmt.Errorf("%s: %w", b.bin, err)
				}
				var res struct {
					EventsPerSec float64 `json:"events_per_sec"`
					CPUPerEvent  float64 `json:"cpu_us_per_event"` // 0 from an appendbench before it printed it
				}
				if err := json.Unmarshal(out, &res); err != nil {
					return err
				}
				rates[b.name] = append(rates[b.name], res.EventsPerSec)
				cpus[b.name] = append(cpus[b.name], res.CPUPerEvent)
				fmt.Fprintf(os.Stderr, "appendcmp: writers=%s round %d %s: %.0f events/s, %.1f µs of CPU per event\n", w, r+1, b.name, res.EventsPerSec, res.CPUPerEvent)
			}
		}
		mp, mn := median(rates["prev"]), median(rates["new"])
		ps := paired(rates["prev"], rates["new"])
		out := map[string]any{"cmd": "appendcmp", "writers": w, "prev": rates["prev"], "new": rates["new"],
			"prev_median": mp, "new_median": mn, "ratio": mn / mp,
			"paired_median": ps.Median, "paired_ci95": []float64{ps.Low, ps.High}, "new_won": ps.Won}
		if !slices.Contains(cpus["prev"], 0) && !slices.Contains(cpus["new"], 0) {
			// Both builds print their CPU per event (an appendbench built before it did
			// prints none, and the ratios would divide by 0).
			cs := paired(cpus["prev"], cpus["new"])
			out["prev_cpu_us_per_event"], out["new_cpu_us_per_event"] = median(cpus["prev"]), median(cpus["new"])
			out["cpu_paired_median"], out["cpu_paired_ci95"] = cs.Median, []float64{cs.Low, cs.High}
		}
		printJSON(out)
	}
	return nil
}

// pairedStats summarises the ratios new ÷ prev of rounds run back to back. The machine's
// speed drifts by tens of percent within minutes, more than the builds differ, so each new
// run is compared with the prev run just before it.
type pairedStats struct {
	Median    float64 // median of the paired ratios
	Low, High float64 // a 95% bootstrap interval of that median
	Won       int     // rounds in which new was faster
}

func paired(prev, next []float64) pairedStats {
	n := min(len(prev), len(next))
	if n == 0 {
		return pairedStats{}
	}
	r := make([]float64, n)
	var st pairedStats
	for i := range r {
		r[i] = next[i] / prev[i]
		if r[i] > 1 {
			st.Won++
		}
	}
	st.Median = median(r)
	// Resample the rounds with replacement; a fixed seed makes the interval a function
	// of the rates, so the same output always prints the same interval.
	rng := rand.New(rand.NewPCG(1, 2))
	const resamples = 10000
	meds := make([]float64, resamples)
	sample := make([]float64, n)
	for i := range meds {
		for j := range sample {
			sample[j] = r[rng.IntN(n)]
		}
		meds[i] = median(sample)
	}
	sort.Float64s(meds)
	st.Low, st.High = meds[resamples*25/1000], meds[resamples*975/1000]
	return st
}
