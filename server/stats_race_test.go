package server

import (
	"context"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// heldManagers is a Processes whose Managers, while hold is set, says so on entered and
// waits for release: a sample that lists the managers stays between its two looks at
// the ring for as long as the test wants.
type heldManagers struct {
	fakeProcesses
	hold              chan bool
	entered, released chan struct{}
}

func (h *heldManagers) Managers(ctx context.Context) ([]Manager, error) {
	select {
	case <-h.hold:
		h.entered <- struct{}{}
		<-h.released
	default:
	}
	return h.fakeProcesses.Managers(ctx)
}

// TestStatsConcurrentSamplesKeepTheMax: when two samples of one second race (the loop's
// and a request's), the one that loses changes nothing: the longest commit of the
// interval stays in the one kept. The loser used to take the commits' max and drop it,
// leaving commit_max_ms 0 (below commit_mean_ms) for that second.
func TestStatsConcurrentSamplesKeepTheMax(t *testing.T) {
	commits := NewCommits(nil)
	procs := &heldManagers{hold: make(chan bool, 1), entered: make(chan struct{}), released: make(chan struct{})}
	e := newEnv(t, Options{Commits: commits, Processes: procs})
	ctx := context.Background()
	base := time.Unix(1000, 0).Add(statsEvery / 2)
	e.srv.takeSample(ctx, base)
	commits.Observe(pmd.CommitInfo{Requests: 1, Records: 1, Duration: 5 * time.Millisecond})

	procs.hold <- true
	loser := make(chan struct{})
	go func() {
		defer close(loser)
		e.srv.takeSample(ctx, base.Add(statsEvery))
	}()
	<-procs.entered
	e.srv.takeSample(ctx, base.Add(statsEvery+100*time.Millisecond)) // gets in first
	close(procs.released)
	<-loser

	hist := e.srv.history()
	if len(hist) != 2 {
		t.Fatalf("%d samples, want 2", len(hist))
	}
	s := series(hist, true)
	if s.CommitMaxMillis[0] == nil || s.CommitMeanMillis[0] == nil || *s.CommitMaxMillis[0] != 5 || *s.CommitMeanMillis[0] != 5 {
		t.Fatalf("commit max %v ms, mean %v ms; want 5 and 5", deref(s.CommitMaxMillis[0]), deref(s.CommitMeanMillis[0]))
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
