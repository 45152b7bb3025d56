package pm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t testing.TB, dir string) *pmd.Store {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// running is a Manager whose Run goroutine the test controls.
type running struct {
	*pm.Manager
	cancel context.CancelFunc
	done   chan error
}

// start runs def on s until stop or the end of the test.
func start[S any](t testing.TB, s *pmd.Store, def pm.Definition[S], opts pm.Options) *running {
	t.Helper()
	return startWith(t, s, def, opts, nil)
}

// startWith is start, calling set, when not nil, on the Manager before Run starts: for
// the tests that set its hooks (export_test.go).
func startWith[S any](t testing.TB, s *pmd.Store, def pm.Definition[S], opts pm.Options, set func(*pm.Manager)) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	m, err := pm.New(s, def, opts)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Manager: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and checks it returned nil. Stopping twice is a no-op.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// idle waits for the manager to have nothing to do, failing the test after a while.
func (r *running) idle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func appendFact(t testing.TB, s *pmd.Store, e pmd.Event) pmd.WriteResult {
	t.Helper()
	res, err := s.Append(context.Background(), "Facts", pmd.Any, pmd.EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// processStream reads a process stream, failing the test on errors other than its
// absence.
func processStream(t testing.TB, s *pmd.Store, stream string) []pmd.Event {
	t.Helper()
	var out []pmd.Event
	for e, err := range s.ReadStream(context.Background(), stream, pmd.ReadOptions{}) {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// tally counts the links and the commands by type in a process stream, failing the
// test if an event is linked twice.
func tally(t testing.TB, events []pmd.Event) (links int, commands map[string]int) {
	t.Helper()
	commands = map[string]int{}
	seen := map[uuid.UUID]bool{}
	for _, e := range events {
		if seen[e.ID] {
			t.Errorf("event %s (%s) is in the process stream twice", e.ID, e.Type)
		}
		seen[e.ID] = true
		if e.Link {
			links++
		} else if e.Metadata[pm.MetaKind] == pm.KindCommand {
			commands[e.Type]++
		}
	}
	return links, commands
}

func TestManagerLinksFactsAndIssuesOnce(t *testing.T) {
	s := openStore(t, t.TempDir())
	r := start(t, s, matchDef("CateringMatch"), pm.Options{Workers: 4})
	correlated := customer("1")
	correlated.Metadata = map[string]any{pmd.CorrelationID: "checkout-7"}
	facts := []pmd.Event{
		correlated, caterer("2"), customer("3"),
		caterer("1"),                // completes 1
		customer("2"),               // completes 2
		customer("1"), caterer("2"), // after completion
	}
	var completing uuid.UUID
	for i, f := range facts {
		f.ID = uuid.New()
		if i == 3 {
			completing = f.ID
		}
		appendFact(t, s, f)
	}
	r.idle(t)

	want := map[string]struct{ links, confirms int }{"1": {3, 1}, "2": {3, 1}, "3": {1, 0}}
	for id, w := range want {
		events := processStream(t, s, "CateringMatch$"+id)
		links, cmds := tally(t, events)
		if links != w.links || cmds["ConfirmOrder"] != w.confirms || cmds["CancelOrder"] != 0 {
			t.Errorf("process %s: %d links, commands %v; want %d links, %d ConfirmOrder", id, links, cmds, w.links, w.confirms)
		}
	}
	p, err := r.Process(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Commands) != 1 {
		t.Fatalf("process 1 issued %v", p.Commands)
	}
	var cmd pmd.Event
	for _, e := range p.Events {
		if e.ID == p.Commands[0].ID {
			cmd = e
		}
	}
	if cmd.Metadata[pmd.CausationID] != completing.String() || cmd.Metadata[pmd.CorrelationID] != completing.String() {
		t.Errorf("ConfirmOrder metadata %v, want causation and correlation %s", cmd.Metadata, completing)
	}
	if sched := p.Events[1]; sched.Type != pm.DeadlineScheduled || sched.Metadata[pmd.CorrelationID] != "checkout-7" {
		t.Errorf("second event %s %v, want DeadlineScheduled correlated to checkout-7", sched.Type, sched.Metadata)
	}
	if p.Status != pm.StatusCompleted || p.State.(match).Confirmed != true {
		t.Errorf("process 1: status %s, state %+v", p.Status, p.State)
	}
	if got, want := r.Counts(), (pm.Counts{Open: 1, Completed: 2}); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}

func TestManagerResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var calls atomic.Int64
	def := matchDef("CateringMatch")
	inner := def.ProcessID
	def.ProcessID = func(e pmd.Event) (string, bool) {
		calls.Add(1)
		return inner(e)
	}
	r := start(t, s, def, pm.Options{CheckpointEvery: 1})
	for i := range 20 {
		appendFact(t, s, customer(fmt.Sprint(i)))
	}
	r.idle(t)
	r.stop(t)
	if got := calls.Load(); got != 20 {
		t.Fatalf("the first run looked at %d events, want 20", got)
	}

	// Facts written while no manager runs are handled by the next one; the events
	// before the checkpoint are not read again.
	for i := range 20 {
		appendFact(t, s, caterer(fmt.Sprint(i)))
	}
	calls.Store(0)
	r = start(t, s, def, pm.Options{CheckpointEvery: 1})
	r.idle(t)
	if got := calls.Load(); got != 20 {
		t.Fatalf("the second run looked at %d events, want the 20 new ones", got)
	}
	for i := range 20 {
		links, cmds := tally(t, processStream(t, s, fmt.Sprintf("CateringMatch$%d", i)))
		if links != 2 || cmds["ConfirmOrder"] != 1 {
			t.Errorf("process %d: %d links, commands %v", i, links, cmds)
		}
	}
	if got, want := r.Counts(), (pm.Counts{Completed: 20}); got != want {
		t.Errorf("Counts() after restart = %+v, want %+v", got, want)
	}
}

func TestManagerWithoutCheckpointRereadsButChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	for i := range 10 {
		appendFact(t, s, customer(fmt.Sprint(i)))
		appendFact(t, s, caterer(fmt.Sprint(i)))
	}
	r.idle(t)
	r.stop(t)
	// Lose the checkpoint: the next run reads every fact again.
	if err := s.DeleteStream(context.Background(), "CateringMatch.checkpoint", pmd.Any); err != nil {
		t.Fatal(err)
	}
	before := s.LastPosition()
	r = start(t, s, matchDef("CateringMatch"), pm.Options{})
	r.idle(t)
	if after := s.LastPosition(); after != before {
		t.Fatalf("re-reading handled facts wrote %d records", after-before)
	}
}

func TestManagerDeadlines(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	def := matchDef("CateringMatch")
	r := start(t, s, def, pm.Options{Clock: clock})
	appendFact(t, s, customer("late"))
	appendFact(t, s, caterer("done"))
	appendFact(t, s, customer("done"))
	appendFact(t, s, caterer("restart"))
	r.idle(t)

	clock.Advance(timeout - time.Minute)
	r.idle(t)
	if p, _ := r.Process(context.Background(), "late"); len(p.Commands) != 0 || len(p.Deadlines) != 1 {
		t.Fatalf("before the deadline: commands %v, deadlines %v", p.Commands, p.Deadlines)
	}
	r.stop(t)

	// The deadlines survive a restart, and fire once.
	clock.Advance(time.Hour)
	r = start(t, s, def, pm.Options{Clock: clock})
	r.idle(t)
	clock.Advance(timeout)
	r.idle(t)
	r.stop(t)
	r = start(t, s, def, pm.Options{Clock: clock})
	r.idle(t)
	appendFact(t, s, caterer("late")) // too late: nothing more
	r.idle(t)

	want := map[string]map[string]int{
		"late":    {"CancelOrder": 1},
		"done":    {"ConfirmOrder": 1},
		"restart": {"CancelOrder": 1},
	}
	for id, w := range want {
		_, cmds := tally(t, processStream(t, s, "CateringMatch$"+id))
		if fmt.Sprint(cmds) != fmt.Sprint(w) {
			t.Errorf("process %s issued %v, want %v", id, cmds, w)
		}
	}
	p, err := r.Process(context.Background(), "late")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != pm.StatusExpired || len(p.Deadlines) != 0 {
		t.Errorf("late: status %s, deadlines %v", p.Status, p.Deadlines)
	}
	if got := recordTypes(p); got != "CustomerConfirmedMenu DeadlineScheduled DeadlineFired CancelOrder CatererConfirmedMenu" {
		t.Errorf("late: stream %s", got)
	}
	if got, want := r.Counts(), (pm.Counts{Completed: 1, Expired: 2}); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}

func TestManagerDeliversAtLeastOnceWithBackoff(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	var mu sync.Mutex
	calls := map[string][]uuid.UUID{}
	correlations := map[string][]string{}
	failures := 2
	handler := func(ctx context.Context, c pm.Command) error {
		mu.Lock()
		defer mu.Unlock()
		calls[c.ProcessID] = append(calls[c.ProcessID], c.ID)
		correlations[c.ProcessID] = append(correlations[c.ProcessID], c.Correlation)
		if c.ProcessID == "flaky" && failures > 0 {
			failures--
			return errors.New("receiver down")
		}
		return nil
	}
	opts := pm.Options{Clock: clock, Deliver: handler, RetryMin: time.Second, RetryMax: time.Minute}
	r := start(t, s, matchDef("CateringMatch"), opts)
	completing := map[string]string{}
	for _, id := range []string{"flaky", "fine"} {
		appendFact(t, s, customer(id))
		completing[id] = appendFact(t, s, caterer(id)).IDs[0].String()
	}
	r.idle(t)
	p, err := r.Process(context.Background(), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	// The n-th retry waits RetryMin·2^(n-1), less a random part of up to half.
	within := func(d pm.Delivery, full time.Duration) bool {
		wait := d.RetryAt.Sub(clock.Now())
		return wait >= full/2 && wait <= full
	}
	if len(p.Deliveries) != 1 || p.Deliveries[0].Delivered() || !within(p.Deliveries[0], time.Second) {
		t.Fatalf("after the first attempt: %+v, want one failure retried in 0.5–1s", p.Deliveries)
	}
	clock.Advance(p.Deliveries[0].RetryAt.Sub(clock.Now()))
	r.idle(t)
	p, _ = r.Process(context.Background(), "flaky")
	if len(p.Deliveries) != 2 || !within(p.Deliveries[1], 2*time.Second) {
		t.Fatalf("after the second attempt: %+v, want a retry 1–2s later", p.Deliveries)
	}
	clock.Advance(p.Deliveries[1].RetryAt.Sub(clock.Now()))
	r.idle(t)
	r.stop(t)

	// A restart delivers nothing again: every delivery is recorded.
	r = start(t, s, matchDef("CateringMatch"), opts)
	r.idle(t)
	mu.Lock()
	defer mu.Unlock()
	cmd := p.Commands[0].ID
	if got := calls["flaky"]; len(got) != 3 || got[0] != cmd || got[2] != cmd {
		t.Errorf("flaky got %v, want its command %s three times", got, cmd)
	}
	if got := calls["fine"]; len(got) != 1 {
		t.Errorf("fine got %v, want one delivery", got)
	}
	for id, got := range correlations {
		for _, c := range got {
			if c != completing[id] {
				t.Errorf("%s's command delivered with Correlation %q, want that of the fact that completed it, %s", id, c, completing[id])
			}
		}
	}
	p, _ = r.Process(context.Background(), "flaky")
	var outcomes []string
	for _, d := range p.Deliveries {
		outcomes = append(outcomes, fmt.Sprintf("%d:%s", d.Attempt, d.Err))
		if d.CommandID != cmd || d.CommandType != "ConfirmOrder" {
			t.Errorf("delivery %+v is not about %s", d, cmd)
		}
	}
	if got := strings.Join(outcomes, " "); got != "1:receiver down 2:receiver down 3:" {
		t.Errorf("deliveries %s", got)
	}
	if p.DeliveriesStream != "CateringMatch.deliveries$flaky" || p.DeliveriesVersion != 2 {
		t.Errorf("deliveries read from %s up to version %d, want CateringMatch.deliveries$flaky up to 2", p.DeliveriesStream, p.DeliveriesVersion)
	}
}

func TestManagerDeliversAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	// Issue commands with no handler: nothing is delivered, nothing recorded.
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	appendFact(t, s, customer("1"))
	completing := appendFact(t, s, caterer("1")).IDs[0]
	r.idle(t)
	r.stop(t)

	got := make(chan pm.Command, 10)
	r = start(t, s, matchDef("CateringMatch"), pm.Options{Deliver: func(_ context.Context, c pm.Command) error {
		got <- c
		return nil
	}})
	r.idle(t)
	r.stop(t)
	close(got)
	var cmds []pm.Command
	for c := range got {
		cmds = append(cmds, c)
	}
	if len(cmds) != 1 || cmds[0].Type != "ConfirmOrder" || cmds[0].ProcessID != "1" || cmds[0].Data["order_id"] != "1" {
		t.Fatalf("delivered %+v, want the ConfirmOrder of process 1", cmds)
	}
	// A handler appending events in response correlates them with the command's.
	if cmds[0].Correlation != completing.String() {
		t.Fatalf("delivered command's Correlation %q, want that of the fact that completed it, %s", cmds[0].Correlation, completing)
	}
}

func TestManagerSkipsEventsWithoutAUsableProcessID(t *testing.T) {
	s := openStore(t, t.TempDir())
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	r := start(t, s, matchDef("CateringMatch"), pm.Options{Logger: logger})
	long := strings.Repeat("x", 300)
	appendFact(t, s, customer(long))
	appendFact(t, s, pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order": "1"}})
	appendFact(t, s, customer("1"))
	r.idle(t)
	if got, err := s.Streams("CateringMatch$", "", 10); err != nil || len(got) != 1 || got[0].Name != "CateringMatch$1" {
		t.Fatalf("process streams %v, want only CateringMatch$1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "belongs to no process") || !strings.Contains(logs.String(), "limit is 256") {
		t.Fatalf("log %q does not explain the skipped event", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestManagerStopsOnBadDecision(t *testing.T) {
	tests := []struct {
		name   string
		decide func(match) []pm.Command
		says   string
	}{
		{"same key twice", func(match) []pm.Command { return []pm.Command{{Type: "A"}, {Type: "A"}} }, `key "A" returned twice`},
		{"type the store refuses", func(match) []pm.Command { return []pm.Command{{Type: strings.Repeat("A", 300)}} }, "type is 300 bytes long"},
		{"data the store cannot encode", func(match) []pm.Command {
			return []pm.Command{{Type: "A", Data: map[string]any{"f": func() {}}}}
		}, "the store refused what it decided"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			def := matchDef("Bad")
			def.Decide = tt.decide
			m, err := pm.New(s, def, pm.Options{Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			appendFact(t, s, customer("1"))
			err = m.Run(context.Background())
			if !errors.Is(err, pm.ErrInvalidDefinition) || !strings.Contains(err.Error(), "Bad$1") || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Run = %v, want ErrInvalidDefinition about Bad$1 saying %q", err, tt.says)
			}
			if err := m.Run(context.Background()); !errors.Is(err, pm.ErrRunning) {
				t.Fatalf("second Run = %v, want ErrRunning", err)
			}
			if len(processStream(t, s, "Bad$1")) != 0 {
				t.Fatal("a refused decision wrote into the process stream")
			}
		})
	}
}

func TestManagerEndsWhenTheStoreCloses(t *testing.T) {
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-done; !errors.Is(err, pmd.ErrClosed) {
		t.Fatalf("Run = %v, want ErrClosed", err)
	}
}

func TestNewRefusesBadDefinitions(t *testing.T) {
	s := openStore(t, t.TempDir())
	def := matchDef("no spaces")
	if _, err := pm.New(s, def, pm.Options{}); !errors.Is(err, pm.ErrInvalidDefinition) {
		t.Fatalf("New = %v, want ErrInvalidDefinition", err)
	}
	if _, err := pm.New(nil, matchDef("A"), pm.Options{}); err == nil {
		t.Fatal("New accepted a nil store")
	}
}

func TestProcessQueries(t *testing.T) {
	s := openStore(t, t.TempDir())
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	for i := range 25 {
		appendFact(t, s, customer(fmt.Sprintf("%02d", i)))
		if i%2 == 0 {
			appendFact(t, s, caterer(fmt.Sprintf("%02d", i)))
		}
	}
	r.idle(t)
	ctx := context.Background()
	var all []pm.ProcessSummary
	after := ""
	for {
		page, err := r.Processes(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(all) != 25 {
		t.Fatalf("listed %d processes, want 25", len(all))
	}
	for i, p := range all {
		wantStatus, wantEvents, wantCmds, wantDeadlines := pm.StatusOpen, 1, 0, 1
		if i%2 == 0 {
			wantStatus, wantEvents, wantCmds, wantDeadlines = pm.StatusCompleted, 2, 1, 0
		}
		if p.ID != fmt.Sprintf("%02d", i) || p.Status != wantStatus || p.Events != wantEvents || p.Commands != wantCmds || p.Deadlines != wantDeadlines {
			t.Errorf("process %d: %+v", i, p)
		}
	}
	if _, err := r.Process(ctx, "nope"); !errors.Is(err, pm.ErrProcessNotFound) {
		t.Errorf("Process(nope) = %v, want ErrProcessNotFound", err)
	}
	if _, err := r.Process(ctx, "a\x00b"); !errors.Is(err, pm.ErrInvalidProcessID) {
		t.Errorf("Process(a\\x00b) = %v, want ErrInvalidProcessID", err)
	}
	if _, err := r.Deliveries(ctx, ""); !errors.Is(err, pm.ErrInvalidProcessID) {
		t.Errorf("Deliveries(\"\") = %v, want ErrInvalidProcessID", err)
	}
	if d, err := r.Deliveries(ctx, "00"); err != nil || len(d) != 0 {
		t.Errorf("Deliveries without a handler = %v, %v; want none", d, err)
	}
	if got, want := r.Counts(), (pm.Counts{Open: 12, Completed: 13}); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}

func TestRunReturnsNilWhenStopped(t *testing.T) {
	s := openStore(t, t.TempDir())
	m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run with a done context = %v, want nil", err)
	}
}

func TestWaitHandled(t *testing.T) {
	s := openStore(t, t.TempDir())
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	appendFact(t, s, customer("1"))
	res := appendFact(t, s, caterer("1"))
	other, err := s.Append(context.Background(), "Unrelated", pmd.Any, pmd.EventData{Type: "Noise"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitHandled(ctx, res.LastPosition); err != nil {
		t.Fatal(err)
	}
	if _, cmds := tally(t, processStream(t, s, "CateringMatch$1")); cmds["ConfirmOrder"] != 1 {
		t.Fatalf("after WaitHandled the process issued %v", cmds)
	}
	// A position past the last handled event, or with none below it, needs no wait.
	for _, pos := range []uint64{other.LastPosition, 0} {
		if err := r.WaitHandled(ctx, pos); err != nil {
			t.Fatalf("WaitHandled(%d) = %v", pos, err)
		}
	}
	// A canceled context ends the wait for a manager that is not running.
	m, err := pm.New(s, matchDef("Other"), pm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithCancel(context.Background())
	stop()
	if err := m.WaitHandled(short, res.LastPosition); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitHandled on a manager that never ran = %v, want context.Canceled", err)
	}
}

// TestProcessStates checks the state a process view shows after each event of its
// stream, read from the store and from a Memory alike.
func TestProcessStates(t *testing.T) {
	view := map[string]func(t *testing.T) pm.Process{
		"store": func(t *testing.T) pm.Process {
			s := openStore(t, t.TempDir())
			r := start(t, s, matchDef("CateringMatch"), pm.Options{})
			appendFact(t, s, customer("42"))
			appendFact(t, s, caterer("42"))
			r.idle(t)
			p, err := r.Process(context.Background(), "42")
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		"memory": func(t *testing.T) pm.Process {
			m, err := pm.NewMemory(matchDef("CateringMatch"), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []pmd.Event{customer("42"), caterer("42")} {
				if _, err := m.Handle(e); err != nil {
					t.Fatal(err)
				}
			}
			p, _ := m.Process("42")
			return p
		},
	}
	type flags struct{ Customer, Caterer, Confirmed bool }
	after := []struct {
		typ  string
		want flags
	}{
		{"CustomerConfirmedMenu", flags{Customer: true}},
		{"CatererConfirmedMenu", flags{Customer: true, Caterer: true}},
		{"ConfirmOrder", flags{Customer: true, Caterer: true, Confirmed: true}},
	}
	for name, get := range view {
		t.Run(name, func(t *testing.T) {
			p := get(t)
			if len(p.States) != len(p.Events) {
				t.Fatalf("%d states for %d events", len(p.States), len(p.Events))
			}
			if last, ok := p.States[len(p.States)-1].(match); !ok || last != p.State.(match) {
				t.Errorf("state after the last event %+v, want the process's state %+v", p.States[len(p.States)-1], p.State)
			}
			for _, a := range after {
				i := slices.IndexFunc(p.Events, func(e pmd.Event) bool { return e.Type == a.typ })
				if i < 0 {
					t.Fatalf("no %s in %s", a.typ, recordTypes(p))
				}
				s, ok := p.States[i].(match)
				if got := (flags{s.Customer, s.Caterer, s.Confirmed}); !ok || got != a.want || s.Order != "42" {
					t.Errorf("state after %s (event %d) = %+v, want %+v", a.typ, i, p.States[i], a.want)
				}
			}
			if p.DeliveriesStream != "CateringMatch.deliveries$42" || p.DeliveriesVersion != -1 {
				t.Errorf("deliveries stream %q at %d, want CateringMatch.deliveries$42 at -1", p.DeliveriesStream, p.DeliveriesVersion)
			}
		})
	}
}

// TestUnmatchedEventSaysWhatIsWrongWithItsField: with DataFieldProblem, the log line of
// an event whose correlation field holds no usable id says what the field holds; a
// whole float (what encoding/json decodes a JSON number to, for a Go caller that
// re-appends events it read through client/) is a process id.
func TestUnmatchedEventSaysWhatIsWrongWithItsField(t *testing.T) {
	s := openStore(t, t.TempDir())
	var logs lockedLog
	def := matchDef("Floats")
	def.NoProcessID = pm.DataFieldProblem("order_id")
	r := start(t, s, def, pm.Options{Logger: logs.logger()})
	appendFact(t, s, pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": 42.5}})
	appendFact(t, s, pmd.Event{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": true}})
	appendFact(t, s, pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": 42.0}})
	appendFact(t, s, pmd.Event{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}})
	r.idle(t)
	lines := logs.lines("belongs to no process")
	want := []string{
		`reason="order_id is a float64 (42.5), want a string or an integer"`,
		`reason="order_id is a bool (true), want a string or an integer"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("log line %d = %s\nwant it to say %s", i, lines[i], w)
		}
	}
	p, err := r.Process(context.Background(), "42")
	if err != nil || len(p.Commands) != 1 || p.Commands[0].Type != "ConfirmOrder" {
		t.Fatalf("process 42 = %+v, %v; want it confirmed by the float and the string id", p, err)
	}
}

// TestAFactWrittenToItsProcessStreamIsUnmatched: a manager named like the category its
// facts are written to (Order, facts in Order$1) cannot link them into their own
// stream: such a fact is counted as unmatched and logged saying why, not taken for one
// linked before a crash and silently dropped. Facts written elsewhere still count.
func TestAFactWrittenToItsProcessStreamIsUnmatched(t *testing.T) {
	s := openStore(t, t.TempDir())
	var logs lockedLog
	r := start(t, s, matchDef("Order"), pm.Options{Logger: logs.logger()})
	for _, e := range []pmd.Event{customer("1"), caterer("1")} {
		if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: e.Type, Data: e.Data}); err != nil {
			t.Fatal(err)
		}
	}
	appendFact(t, s, customer("2"))
	appendFact(t, s, caterer("2"))
	r.idle(t)
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Unmatched["CustomerConfirmedMenu"] != 1 || st.Unmatched["CatererConfirmedMenu"] != 1 {
		t.Errorf("Unmatched = %v, want one of each type", st.Unmatched)
	}
	lines := logs.lines("belongs to no process")
	if len(lines) != 2 || !strings.Contains(lines[0], `its own process stream \"Order$1\": a process manager must not be named like the category`) {
		t.Errorf("log lines:\n%s\nwant two saying the fact is in its own process stream", strings.Join(lines, "\n"))
	}
	if p, err := r.Process(context.Background(), "2"); err != nil || len(p.Commands) != 1 {
		t.Errorf("process 2 = %+v, %v; want its command", p, err)
	}
}

// TestACommandOfAHandledTypeIsNotUnmatched: a Go definition may issue a command of a
// type it handles, its data carrying the correlation field. The record of that command,
// which the manager writes into the process stream itself, is its own: it is passed
// over, neither counted as unmatched nor logged as a fact written to its own stream.
func TestACommandOfAHandledTypeIsNotUnmatched(t *testing.T) {
	type loop struct {
		id string
		n  int
	}
	def := pm.Definition[loop]{
		Name:      "Loop",
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(id string) loop { return loop{id: id} },
		Apply: func(s loop, e pmd.Event) loop {
			if e.Link {
				s.n++
			}
			return s
		},
		Decide: func(s loop) []pm.Command {
			if s.n == 0 {
				return nil
			}
			return []pm.Command{{Type: "Go", Data: map[string]any{"id": s.id, "again": true}}}
		},
	}
	s := openStore(t, t.TempDir())
	var logs lockedLog
	r := start(t, s, def, pm.Options{Logger: logs.logger()})
	appendFact(t, s, goFact("1"))
	r.idle(t)
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unmatched) != 0 {
		t.Errorf("Unmatched = %v, want none: the only other Go is the manager's own command", st.Unmatched)
	}
	if lines := logs.lines("belongs to no process"); len(lines) != 0 {
		t.Errorf("logged:\n%s\nwant nothing", strings.Join(lines, "\n"))
	}
	if p, err := r.Process(context.Background(), "1"); err != nil || len(p.Commands) != 1 || p.Commands[0].Type != "Go" {
		t.Errorf("process 1 = %+v, %v; want its one Go command", p, err)
	}
}

// TestADotProcessIDIsUnmatched: "." and "..", like an empty id, name no process: no URL
// can name them (clients and browsers resolve them as the path's dot segments), so such
// a process could never be opened, retried or skipped over HTTP. An event with one is
// counted as unmatched and logged, and starts nothing; the queries refuse the id. A
// process of such an id that a store written before the rule already holds keeps
// working: its events are linked, and it is listed and read.
func TestADotProcessIDIsUnmatched(t *testing.T) {
	for _, id := range []string{".", ".."} {
		t.Run(id, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			var logs lockedLog
			r := start(t, s, matchDef("CateringMatch"), pm.Options{Clock: pmtest.NewClock(time.Now()), Logger: logs.logger()})
			appendFact(t, s, customer(id))
			r.idle(t)
			st, err := r.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Unmatched["CustomerConfirmedMenu"] != 1 {
				t.Errorf("Unmatched = %v, want one CustomerConfirmedMenu", st.Unmatched)
			}
			lines := logs.lines("belongs to no process")
			if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf(`its process id \"%s\" is a dot segment`, id)) {
				t.Errorf("log lines:\n%s\nwant one saying the process id is a dot segment", strings.Join(lines, "\n"))
			}
			if info, err := s.StreamInfo("CateringMatch$" + id); err != nil || info.Exists {
				t.Errorf("stream CateringMatch$%s: %+v, %v; want none", id, info, err)
			}
			if _, err := r.Process(ctx, id); !errors.Is(err, pm.ErrInvalidProcessID) {
				t.Errorf("Process(%q) = %v, want ErrInvalidProcessID", id, err)
			}
			if _, err := r.Deliveries(ctx, id); !errors.Is(err, pm.ErrInvalidProcessID) {
				t.Errorf("Deliveries(%q) = %v, want ErrInvalidProcessID", id, err)
			}

			// A store written before: the process exists, its first fact linked.
			r.stop(t)
			s = openStore(t, t.TempDir())
			first := appendFact(t, s, customer(id))
			if _, err := s.Link(ctx, "CateringMatch$"+id, pmd.Any, first.IDs[0]); err != nil {
				t.Fatal(err)
			}
			r = start(t, s, matchDef("CateringMatch"), pm.Options{Clock: pmtest.NewClock(time.Now()), Logger: quiet()})
			r.idle(t)
			appendFact(t, s, caterer(id))
			r.idle(t)
			p, err := r.Process(ctx, id)
			if err != nil || p.Status != pm.StatusCompleted || len(p.Commands) != 1 || p.Commands[0].Type != "ConfirmOrder" {
				t.Fatalf("Process(%q) = %+v, %v; want it completed by its two facts, ConfirmOrder issued", id, p, err)
			}
			list, err := r.List(ctx, pm.ListOptions{})
			if err != nil || len(list.Processes) != 1 || list.Processes[0].ID != id {
				t.Fatalf("List = %+v, %v; want the process %q", list, err, id)
			}
		})
	}
}
