package pm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The snapshot crash test kills a child process (this test binary, re-executed) with
// SIGKILL while it handles the ticks of a few long processes and writes a snapshot
// every two events, so that many kills land in or around a snapshot write. After the
// last restart each process is asked, with a Probe event, what its state is: the
// runtime folds it from the newest snapshot it trusts plus the events after it, and the
// answer must count every tick once.

// counter counts the ticks of a process and sums their values.
type counter struct {
	Ticks  int
	Sum    int64
	Probes int
}

func counterDef() pm.Definition[counter] {
	return pm.Definition[counter]{
		Name:      "Counter",
		Handles:   []string{"Tick", "Probe"},
		ProcessID: pm.DataField("p"),
		Init:      func(string) counter { return counter{} },
		Apply: func(s counter, e pmd.Event) counter {
			if !e.Link {
				return s
			}
			switch e.Type {
			case "Tick":
				s.Ticks++
				s.Sum += toInt64(e.Data["v"])
			case "Probe":
				s.Probes++
			}
			return s
		},
		Decide: func(s counter) []pm.Command {
			if s.Probes == 0 {
				return nil
			}
			return []pm.Command{{Type: "Report", Key: fmt.Sprintf("report-%d", s.Probes),
				Data: map[string]any{"ticks": s.Ticks, "sum": s.Sum}}}
		},
	}
}

// toInt64 reads an integer of whatever width msgpack decoded it as.
func toInt64(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	}
	return 0
}

// tickPlan is the ticks both processes derive from the seed: ids, processes, values.
func tickPlan(seed uint64, n int) []pmd.EventData {
	rng := rand.New(rand.NewPCG(seed, 9))
	out := make([]pmd.EventData, n)
	for i := range out {
		out[i] = pmd.EventData{
			ID:   uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "tick %d/%d", seed, i)),
			Type: "Tick",
			Data: map[string]any{"p": []string{"a", "b", "c"}[rng.IntN(3)], "v": rng.IntN(1000)},
		}
	}
	return out
}

func TestSnapshotCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestSnapshotCrashKill9 as its child process")
	}
	die := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(2)
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	n, _ := strconv.Atoi(os.Getenv(crashSizeEnv))
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet()})
	if err != nil {
		die("open", err)
	}
	m, err := pm.New(s, counterDef(), pm.Options{Logger: quiet(), Workers: 4, CheckpointEvery: 5, SnapshotEvery: 2})
	if err != nil {
		die("new", err)
	}
	ctx := context.Background()
	go func() { die("run", m.Run(ctx)) }()
	var out sync.Mutex
	ticks := tickPlan(seed, n)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ticks); i += 3 {
				// A tick stored already is an exact retry, which writes nothing.
				if _, err := s.Append(ctx, "Ticks$"+ticks[i].ID.String(), pmd.Any, ticks[i]); err != nil {
					die("append", err)
				}
				out.Lock()
				fmt.Printf("ack %d\n", i)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := m.WaitIdle(ctx); err != nil {
		die("wait", err)
	}
	fmt.Println("idle")
	select {} // until killed
}

func TestSnapshotCrashKill9(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("child")
	}
	n, rounds := 600, 6
	if testing.Short() {
		n, rounds = 200, 3
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range rounds {
		acks := 1 + rng.IntN(n)
		seen := 0
		runChildTest(t, "TestSnapshotCrashChild", dir, "ticks", seed, n, func(line string) bool {
			if strings.HasPrefix(line, "ack ") {
				seen++
			}
			return seen >= acks || line == "idle"
		})
	}
	runChildTest(t, "TestSnapshotCrashChild", dir, "ticks", seed, n, func(line string) bool { return line == "idle" })

	want := map[string][2]int64{}
	for _, tick := range tickPlan(seed, n) {
		p := tick.Data["p"].(string)
		w := want[p]
		want[p] = [2]int64{w[0] + 1, w[1] + int64(tick.Data["v"].(int))}
	}
	s := openStore(t, dir)
	r := start(t, s, counterDef(), pm.Options{SnapshotEvery: 2})
	r.idle(t)
	for p, w := range want {
		if info, err := s.StreamInfo("Counter.snapshots$" + p); err != nil || !info.Exists {
			t.Errorf("process %s has no snapshot (%v)", p, err)
		}
		links, _ := tally(t, processStream(t, s, "Counter$"+p))
		if int64(links) != w[0] {
			t.Errorf("process %s: %d ticks linked, want %d", p, links, w[0])
		}
		appendFact(t, s, pmd.Event{ID: uuid.New(), Type: "Probe", Data: map[string]any{"p": p}})
	}
	r.idle(t)
	for p, w := range want {
		events := processStream(t, s, "Counter$"+p)
		last := events[len(events)-1]
		if last.Type != "Report" {
			t.Fatalf("process %s ends with %s, not the Report the probe asked for", p, last.Type)
		}
		got := [2]int64{toInt64(last.Data["ticks"]), toInt64(last.Data["sum"])}
		if got != w {
			t.Errorf("process %s reports %d ticks summing to %d, want %d and %d", p, got[0], got[1], w[0], w[1])
		}
	}
}
