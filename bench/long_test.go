package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The long-process benchmark (issue 15): a process manager whose processes never
// complete handles Tick events, fsync on. The same number of events is handled twice,
// each time by a fresh manager on a fresh store: once all of them for one process,
// once one for each of as many processes (the baseline, in the same run).

const longEvents = 100_000

// tickState is the state of a process that counts its ticks and never completes.
type tickState struct {
	Ticks int
	Last  time.Time
}

func tickDef() pm.Definition[tickState] {
	return pm.Definition[tickState]{
		Name:      "Ticker",
		Handles:   []string{"Tick"},
		ProcessID: pm.DataField("p"),
		Init:      func(string) tickState { return tickState{} },
		Apply: func(s tickState, e pmd.Event) tickState {
			if e.Link {
				s.Ticks++
				s.Last = e.Timestamp
			}
			return s
		},
		Decide: func(s tickState) []pm.Command { return nil },
	}
}

// BenchmarkLongProcess reports, for longEvents events:
//
//   - short-events/s: handled when each is the only event of its process (the baseline);
//   - long-events/s: handled when all are events of one process, and x-short, that
//     rate as a multiple of the baseline (target ≥ 0.8);
//   - restart-ms: how long Run takes to start on the store of the long process after
//     a restart, and first-ms, then, how long the first new event of that process
//     takes from its append being acknowledged to its being handled (target < 50 ms),
//     beside first-new-ms, the same for the first event of a new process.
//
// Run it once: go test -run '^$' -bench BenchmarkLongProcess -benchtime 1x ./bench/
func BenchmarkLongProcess(b *testing.B) {
	for range b.N {
		short := handleTicks(b, func(i int) string { return fmt.Sprintf("p%06d", i) }, nil)
		long := handleTicks(b, func(int) string { return "long" }, func(s *pmd.Store, dir string) {
			s.Close()
			restart(b, dir)
		})
		b.ReportMetric(short, "short-events/s")
		b.ReportMetric(long, "long-events/s")
		b.ReportMetric(long/short, "x-short")
	}
}

// handleTicks appends longEvents ticks for the processes pid names, then times a fresh
// manager handling them all, and returns the events handled per second. then, if set,
// runs on the store afterwards.
func handleTicks(b *testing.B, pid func(int) string, then func(*pmd.Store, string)) float64 {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "store")
	s := openStore(b, dir, false, nil)
	ctx := context.Background()
	batch := make([]pmd.EventData, 0, 1000)
	for i := range longEvents {
		batch = append(batch, pmd.EventData{Type: "Tick", Data: map[string]any{"p": pid(i)}})
		if len(batch) == cap(batch) || i == longEvents-1 {
			if _, err := s.Append(ctx, "Ticks", pmd.Any, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	m, err := pm.New(s, tickDef(), pm.Options{Workers: pmWorkers, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	stop := runManager(b, m)
	wait(b, m.WaitIdle)
	elapsed := time.Since(begin)
	stop()
	if then != nil {
		then(s, dir)
	} else {
		s.Close()
	}
	return longEvents / elapsed.Seconds()
}

// restart reopens the store of the long process and times the first events after it.
func restart(b *testing.B, dir string) {
	b.Helper()
	s := openStore(b, dir, false, nil)
	defer s.Close()
	m, err := pm.New(s, tickDef(), pm.Options{Workers: pmWorkers, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	stop := runManager(b, m)
	defer stop()
	wait(b, m.WaitIdle)
	b.ReportMetric(ms(time.Since(begin)), "restart-ms")
	for _, c := range []struct{ pid, metric string }{{"long", "first-ms"}, {"new", "first-new-ms"}} {
		res, err := s.Append(context.Background(), "Ticks", pmd.Any, pmd.EventData{Type: "Tick", Data: map[string]any{"p": c.pid}})
		if err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		wait(b, func(ctx context.Context) error { return m.WaitHandled(ctx, res.LastPosition) })
		b.ReportMetric(ms(time.Since(acked)), c.metric)
	}
	list, err := m.Processes(context.Background(), "", 1)
	if err != nil || len(list) != 1 || list[0].ID != "long" || list[0].Events != longEvents+1 {
		b.Fatalf("the long process after the restart: %+v, %v; want %d events", list, err, longEvents+1)
	}
}

// runManager runs m until the returned function is called.
func runManager(b *testing.B, m *pm.Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// wait calls f with a deadline of ten minutes, failing the benchmark on an error.
func wait(b *testing.B, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		b.Fatal(err)
	}
}
