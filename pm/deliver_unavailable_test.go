package pm_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestARecordWaitingForSpaceIsNoHang: a command whose handler returned, and whose record
// waits for a full disk, was answered: it is not taken for hung (a false warning) and
// keeps its slot of Deliverers until the record lands. It counted as hung after
// HangAfter, and its slot went to another process's command, one more each HangAfter,
// none of them recorded, so that all were delivered again after a restart.
func TestARecordWaitingForSpaceIsNoHang(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	const def = "CateringMatch"
	orders := []string{"o1", "o2", "o3", "o4"}
	s, free := fullDiskStore(t, func(s *pmd.Store) {
		for _, o := range orders {
			appendFact(t, s, customer(o))
			appendFact(t, s, caterer(o))
		}
		r := start(t, s, matchDef(def), pm.Options{})
		r.idle(t)
		r.stop(t)
	})

	var mu sync.Mutex
	delivered := map[string]int{} // by process
	attempted := make(chan string, 64)
	deliver := func(_ context.Context, c pm.Command) error {
		mu.Lock()
		delivered[c.ProcessID]++
		mu.Unlock()
		attempted <- c.ProcessID
		return nil
	}
	hangs := make(chan struct{}, 16)
	warned := make(chan struct{})
	var warnOnce sync.Once
	logger := slog.New(multiWatch{
		{substr: "hangs", seen: func() {
			select {
			case hangs <- struct{}{}:
			default:
			}
		}},
		{substr: "the store cannot write", seen: func() { warnOnce.Do(func() { close(warned) }) }},
	})
	const hangAfter = 200 * time.Millisecond
	m, err := pm.New(s, matchDef(def), pm.Options{
		Logger: logger, Deliverers: 1, HangAfter: hangAfter, Deliver: deliver,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	deadline := time.After(30 * time.Second)
	untilWhileRunning(t, warned, done, deadline, "the manager met the full disk")
	var first string
	select {
	case first = <-attempted:
	case <-deadline:
		t.Fatal("no command delivered")
	}
	// The first command's record waits for space: for a good many HangAfters, nothing
	// else may go out to the receiver, and nothing is taken for hung.
	quiet := time.After(10 * hangAfter)
	for waiting := true; waiting; {
		select {
		case p := <-attempted:
			t.Fatalf("the command of %s delivered while that of %s waited for its record (Deliverers 1)", p, first)
		case <-hangs:
			t.Fatal("a command whose record waits for space was taken for hung")
		case err := <-done:
			t.Fatalf("Run returned %v on a full disk", err)
		case <-quiet:
			waiting = false
		}
	}

	free()
	waitCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := m.WaitIdle(waitCtx); err != nil {
		t.Fatalf("WaitIdle once space was freed: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range orders {
		if delivered[o] != 1 {
			t.Errorf("the command of %s delivered %d times, want once", o, delivered[o])
		}
		var recs []string
		for _, e := range processStream(t, s, def+".deliveries$"+o) {
			recs = append(recs, e.Type)
		}
		if len(recs) != 1 || recs[0] != "CommandDelivered" {
			t.Errorf("deliveries of %s: %v, want one CommandDelivered", o, recs)
		}
	}
}

// multiWatch is a slog.Handler that passes every record to each of its watchHandlers.
type multiWatch []watchHandler

func (h multiWatch) Enabled(context.Context, slog.Level) bool { return true }

func (h multiWatch) Handle(ctx context.Context, r slog.Record) error {
	for i := range h {
		_ = h[i].Handle(ctx, r)
	}
	return nil
}

func (h multiWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h multiWatch) WithGroup(string) slog.Handler      { return h }
