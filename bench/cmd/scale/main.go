// Command scale measures pmd at scale, each figure beside a baseline from the same run:
// loading a large store, RSS after open in a fresh process, open time after a clean stop
// and after kill -9, stream replay warm and cold, append latency stalls, and durable
// append throughput against a build of an older pmd. See "Scale" in bench/README.md for
// the figures and `make bench-scale` for the whole set.
//
//	scale load     -dir D -to N          load (or extend) a store to N events
//	scale open     -dir D [-cache B]     (child) open, report open time and RSS as JSON
//	scale mem      -dir D                RSS after open in fresh processes, per CacheSize
//	scale crash    -dir D                kill -9 a fsyncing writer, time the next open
//	scale replay   -dir D                10-event process streams: warm and cold replay
//	scale stall    -dir D -base B        16 fsyncing writers for 60 s on D and on B
//	scale appendcmp -prev BIN -new BIN   interleaved appendbench runs of two builds
//	scale all      -dir D -size N        load, then every measurement above but appendcmp
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"load":      cmdLoad,
		"open":      cmdOpen,
		"mem":       cmdMem,
		"crash":     cmdCrash,
		"writer":    cmdWriter,
		"replay":    cmdReplay,
		"stall":     cmdStall,
		"appendcmp": cmdAppendCmp,
		"scavenge":  cmdScavenge,
		"all":       cmdAll,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "scale %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: scale load|open|mem|crash|replay|stall|appendcmp|scavenge|all [flags]; see bench/README.md")
	os.Exit(2)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// payload is the 256-byte event body, as in bench/store_test.go.
var payload = map[string]any{"order_id": "0000000042", "pad": strings.Repeat("p", 226)}

// The events of a loaded store are a pure function of their index i (0, 1, 2, ...), so a
// load can stop and resume, and every store of a size holds the same streams.
//
// Order streams: events 10b to 10b+9 are stream "Order$b", written in one append (which
// keeps loading fast), so a store of N events holds about N/10 order streams of 10.
//
// Process streams: for each planned size T, 100 streams "Proc<T>$k" (k < 100) of 10
// events each; event j of stream k is event j*T/10 + p*1000 + 7k + 3, where p is the
// plan's number, so its events are spread over the whole of a T-event store, a tenth of
// the log apart. Replay at size N reads the streams of the largest plan T <= N.
var plans = []int64{100_000, 1_000_000, 10_000_000, 30_000_000, 100_000_000, 300_000_000}

const procPerPlan = 100

var procSlots = func() map[int64]string {
	m := make(map[int64]string)
	for p, t := range plans {
		for k := int64(0); k < procPerPlan; k++ {
			for j := int64(0); j < 10; j++ {
				i := j*t/10 + int64(p)*1000 + 7*k + 3
				if _, dup := m[i]; dup {
					panic("process slots collide")
				}
				m[i] = procName(t, k)
			}
		}
	}
	return m
}()

func procName(t, k int64) string { return "Proc" + sizeName(t) + "$" + strconv.FormatInt(k, 10) }

func streamOf(i int64) string {
	if s, ok := procSlots[i]; ok {
		return s
	}
	return orderStream(i)
}

func orderStream(i int64) string { return "Order$" + strconv.FormatInt(i/10, 10) }

// procStreams returns the process streams to replay in a store of n loaded events.
func procStreams(n int64) (plan int64, names []string) {
	for _, t := range plans {
		if t <= n {
			plan = t
		}
	}
	if plan == 0 {
		return 0, nil
	}
	for k := int64(0); k < procPerPlan; k++ {
		names = append(names, procName(plan, k))
	}
	return plan, names
}

func sizeName(n int64) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// parseSize reads 100k, 10M, 1e7 or a plain number.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1_000_000_000, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	return int64(f * float64(mult)), nil
}

// state is kept beside the store, in <dir>.json: how many generated events it holds.
type state struct {
	Loaded int64 `json:"loaded"`
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(strings.TrimRight(dir, "/") + ".json")
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func writeState(dir string, st state) error {
	b, _ := json.Marshal(st)
	return os.WriteFile(strings.TrimRight(dir, "/")+".json", b, 0o644)
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// percentile of sorted durations (or any sorted floats), p in [0, 100].
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stderrLogger shows pmd's own log lines (replay progress, repairs) on stderr.
func stderrLogger() *slog.Logger { return slog.New(slog.NewTextHandler(os.Stderr, nil)) }
