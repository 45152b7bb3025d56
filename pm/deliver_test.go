package pm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// goDef is a definition named name whose process, keyed by the id of the Go facts
// (goFact), counts the events linked into its stream and decides with decide.
func goDef(name string, decide func(n int) []pm.Command) pm.Definition[int] {
	return pm.Definition[int]{
		Name:      name,
		Handles:   []string{"Go"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) int { return 0 },
		Apply: func(n int, e pmd.Event) int {
			if e.Link {
				n++
			}
			return n
		},
		Decide: decide,
	}
}

// steps is a definition whose process issues the commands Step1, Step2 and Step3, in
// that order, at its first event: the commands whose delivery order is tested.
func stepsDef(name string) pm.Definition[int] {
	return goDef(name, func(n int) []pm.Command {
		if n == 0 {
			return nil
		}
		return []pm.Command{{Type: "Step1"}, {Type: "Step2"}, {Type: "Step3"}}
	})
}

func goFact(id string) pmd.Event { return pmd.Event{Type: "Go", Data: map[string]any{"id": id}} }

// script is a handler whose answers the test sets per command type and process: an
// error, or nil. It records the commands handed to it, in order.
type script struct {
	mu    sync.Mutex
	fail  map[string]error // by "<process>/<type>"
	calls []string         // "<process>/<type>"
}

func (s *script) handle(_ context.Context, c pm.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := c.ProcessID + "/" + c.Type
	s.calls = append(s.calls, k)
	return s.fail[k]
}

func (s *script) set(k string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = map[string]error{}
	}
	s.fail[k] = err
}

func (s *script) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// outcomes lists the deliveries records of process id as "<type>:<outcome>".
func outcomes(t *testing.T, r *running, id string) string {
	t.Helper()
	ds, err := r.Deliveries(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.CommandType+":"+d.Outcome)
	}
	return strings.Join(out, " ")
}

// advanceToRetry moves the clock to the retry time of the last record of process id.
func advanceToRetry(t *testing.T, r *running, clock *pmtest.Clock, id string) {
	t.Helper()
	ds, err := r.Deliveries(context.Background(), id)
	if err != nil || len(ds) == 0 || ds[len(ds)-1].RetryAt.IsZero() {
		t.Fatalf("deliveries of %s: %+v, %v; want a failed one last", id, ds, err)
	}
	clock.Advance(ds[len(ds)-1].RetryAt.Sub(clock.Now()))
}

// parkStep1 appends the fact that starts process id of stepsDef, on a manager whose
// handler fails id's Step1 and parks a command at its second failure (MaxAttempts 2):
// the first attempt fails at once, the second at its retry time. It checks that Step1
// of id is then the one command parked, and returns it.
func parkStep1(t *testing.T, s *pmd.Store, r *running, clock *pmtest.Clock, id string) pm.ParkedCommand {
	t.Helper()
	appendFact(t, s, goFact(id))
	r.idle(t)
	advanceToRetry(t, r, clock, id)
	r.idle(t)
	parked := r.parked(t)
	if len(parked) != 1 || parked[0].Command.ProcessID != id || parked[0].Command.Type != "Step1" || parked[0].Attempts != 2 {
		t.Fatalf("Parked() = %+v, want %s's Step1 after 2 attempts", parked, id)
	}
	return parked[0]
}

// TestDeliveryInOrderParkRetrySkip: a process's commands go out in the order issued; a
// failing one holds back those behind it, is parked after MaxAttempts failures, and
// Retry or Skip let the rest go, every step recorded in the deliveries stream.
func TestDeliveryInOrderParkRetrySkip(t *testing.T) {
	tests := []struct {
		name     string
		resolve  func(r *running, id uuid.UUID) error
		fixed    bool // the receiver works again before the operator acts
		calls    string
		outcomes string
	}{
		{
			name:     "retry",
			resolve:  func(r *running, id uuid.UUID) error { return r.Retry(context.Background(), "1", id) },
			fixed:    true,
			calls:    "1/Step1 1/Step1 1/Step1 1/Step2 1/Step3",
			outcomes: "Step1:failed Step1:failed Step1:parked Step1:retried Step1:delivered Step2:delivered Step3:delivered",
		},
		{
			name:     "skip",
			resolve:  func(r *running, id uuid.UUID) error { return r.Skip(context.Background(), "1", id) },
			calls:    "1/Step1 1/Step1 1/Step2 1/Step3",
			outcomes: "Step1:failed Step1:failed Step1:parked Step1:skipped Step2:delivered Step3:delivered",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			h := &script{}
			h.set("1/Step1", errors.New("receiver down"))
			r := start(t, s, stepsDef("Steps"), pm.Options{Clock: clock, Deliver: h.handle, MaxAttempts: 2, RetryMin: time.Second})
			parked := parkStep1(t, s, r, clock, "1")
			if got := strings.Join(h.got(), " "); got != "1/Step1 1/Step1" {
				t.Fatalf("until Step1 was parked the handler got %q, want only Step1 twice: Step2 waits behind it", got)
			}
			if parked.Err != "receiver down" {
				t.Fatalf("parked with the error %q, want the handler's", parked.Err)
			}
			if st, err := r.Stats(ctx); err != nil || st.Parked != 1 {
				t.Fatalf("Stats = %+v, %v; want 1 parked", st, err)
			}
			// Parked, it is not attempted again however long one waits.
			clock.Advance(24 * time.Hour)
			r.idle(t)
			if got := len(h.got()); got != 2 {
				t.Fatalf("a parked command was attempted: %v", h.got())
			}
			// Only a parked or failing command can be acted on.
			step2 := commandID(t, r, "1", "Step2")
			if err := r.Skip(ctx, "1", step2); !errors.Is(err, pm.ErrCommandNotStuck) {
				t.Fatalf("Skip of a queued command = %v, want ErrCommandNotStuck", err)
			}
			if err := r.Retry(ctx, "2", parked.Command.ID); !errors.Is(err, pm.ErrCommandNotFound) {
				t.Fatalf("Retry naming another process = %v, want ErrCommandNotFound", err)
			}
			if tt.fixed {
				h.set("1/Step1", nil)
			}
			if err := tt.resolve(r, parked.Command.ID); err != nil {
				t.Fatal(err)
			}
			r.idle(t)
			if got := strings.Join(h.got(), " "); got != tt.calls {
				t.Errorf("handler got %q, want %q", got, tt.calls)
			}
			if got := outcomes(t, r, "1"); got != tt.outcomes {
				t.Errorf("deliveries %q, want %q", got, tt.outcomes)
			}
			if err := tt.resolve(r, parked.Command.ID); !errors.Is(err, pm.ErrCommandNotFound) {
				t.Errorf("acting twice = %v, want ErrCommandNotFound", err)
			}
			if p := r.parked(t); len(p) != 0 {
				t.Errorf("Parked() = %+v after the operator acted", p)
			}
		})
	}
}

// commandID is the id of the command of type typ of process id.
func commandID(t *testing.T, r *running, id, typ string) uuid.UUID {
	t.Helper()
	p, err := r.Process(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Commands {
		if c.Type == typ {
			return c.ID
		}
	}
	t.Fatalf("process %s has no %s", id, typ)
	return uuid.Nil
}

// TestDeliveryAHangingReceiverDelaysNoOtherReceiver: five processes whose commands go to
// a receiver that never answers take its Deliverers slots, and only those: the commands
// of another receiver, issued after them, are delivered while they hang.
func TestDeliveryAHangingReceiverDelaysNoOtherReceiver(t *testing.T) {
	s := openStore(t, t.TempDir())
	const slots = 2
	entered := make(chan string, 16)
	var hanging, most atomic.Int32
	delivered := make(chan string, 16)
	handler := func(ctx context.Context, c pm.Command) error {
		if !strings.HasPrefix(c.ProcessID, "hang") {
			delivered <- c.ProcessID + "/" + c.Type
			return nil
		}
		n := hanging.Add(1)
		defer hanging.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		entered <- c.ProcessID
		<-ctx.Done() // hangs until the manager stops
		return ctx.Err()
	}
	receiver := func(c pm.Command) string {
		if strings.HasPrefix(c.ProcessID, "hang") {
			return "http://hangs.example"
		}
		return "http://works.example"
	}
	// HangAfter off: the slots of the hanging receiver stay taken, as the test counts them.
	r := start(t, s, stepsDef("Iso"), pm.Options{Deliver: handler, Receiver: receiver, Deliverers: slots, HangAfter: -1})
	for i := range 5 {
		appendFact(t, s, goFact(fmt.Sprintf("hang%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range slots {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the hanging receiver never got its commands")
		}
	}
	// Every slot of the hanging receiver is taken; the other receiver's commands go out.
	appendFact(t, s, goFact("ok"))
	var got []string
	for len(got) < 3 {
		select {
		case c := <-delivered:
			got = append(got, c)
		case <-ctx.Done():
			t.Fatalf("the healthy receiver got %v while the other hung, want its three commands", got)
		}
	}
	if want := "ok/Step1 ok/Step2 ok/Step3"; strings.Join(got, " ") != want {
		t.Errorf("healthy receiver got %v, want %s", got, want)
	}
	r.stop(t)
	if m := most.Load(); m > slots {
		t.Errorf("%d attempts of the hanging receiver ran at once, want at most %d", m, slots)
	}
	// Stopping abandoned the hanging attempts unrecorded: they are made again later.
	for i := range 5 {
		if got := outcomes(t, r, fmt.Sprintf("hang%d", i)); got != "" {
			t.Errorf("hang%d: deliveries %q, want none recorded", i, got)
		}
	}
}

// TestDeliveryAHangingProcessDelaysNoOtherProcessOfItsReceiver: the commands of four
// processes hang at the one receiver of a manager with the default options, taking all
// its Deliverers; once they have run for HangAfter they no longer count, and a later
// process's commands go out beside them, while each hanging process still holds back
// its own later commands. The same when the receiver answered each process's first
// command and hangs on its second, started at the very clock reading of that answer.
func TestDeliveryAHangingProcessDelaysNoOtherProcessOfItsReceiver(t *testing.T) {
	for _, hangAt := range []string{"Step1", "Step2"} {
		t.Run(hangAt, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			entered := make(chan string, 16)
			delivered := make(chan string, 16)
			handler := func(ctx context.Context, c pm.Command) error {
				if strings.HasPrefix(c.ProcessID, "hang") && c.Type >= hangAt {
					entered <- c.ProcessID + "/" + c.Type
					<-ctx.Done() // hangs until the manager stops
					return ctx.Err()
				}
				delivered <- c.ProcessID + "/" + c.Type
				return nil
			}
			r := start(t, s, stepsDef("Hang"), pm.Options{Clock: clock, Deliver: handler})
			for i := range 4 { // the default Deliverers
				appendFact(t, s, goFact(fmt.Sprintf("hang%d", i)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for range 4 {
				select {
				case <-entered:
				case <-ctx.Done():
					t.Fatal("the hanging commands never reached the receiver")
				}
			}
			for len(delivered) > 0 { // the Step1s answered before the hang
				<-delivered
			}
			appendFact(t, s, goFact("ok"))
			clock.Advance(time.Second) // the default HangAfter
			var got []string
			for len(got) < 3 {
				select {
				case c := <-delivered:
					got = append(got, c)
				case c := <-entered:
					t.Fatalf("%s reached the receiver while an earlier command of its process hangs", c)
				case <-ctx.Done():
					t.Fatalf("process ok got %v while four others hung, want its three commands", got)
				}
			}
			if want := "ok/Step1 ok/Step2 ok/Step3"; strings.Join(got, " ") != want {
				t.Errorf("got %v, want %s", got, want)
			}
			r.stop(t)
			select {
			case c := <-entered:
				t.Errorf("%s reached the receiver while an earlier command of its process hung", c)
			default:
			}
		})
	}
}

// TestRetryAndSkipAFailingCommand: a failing command, waiting for its retry time and not
// parked, can be retried or skipped too: Retry hands it over at once, long before its
// recorded retry time, and records the retry; Skip gives it up and releases the
// commands behind it.
func TestRetryAndSkipAFailingCommand(t *testing.T) {
	tests := []struct {
		name     string
		resolve  func(r *running, id uuid.UUID) error
		calls    string
		outcomes string
	}{
		{
			name:     "retry",
			resolve:  func(r *running, id uuid.UUID) error { return r.Retry(context.Background(), "1", id) },
			calls:    "1/Step1 1/Step1 1/Step2 1/Step3",
			outcomes: "Step1:failed Step1:retried Step1:delivered Step2:delivered Step3:delivered",
		},
		{
			name:     "skip",
			resolve:  func(r *running, id uuid.UUID) error { return r.Skip(context.Background(), "1", id) },
			calls:    "1/Step1 1/Step2 1/Step3",
			outcomes: "Step1:failed Step1:skipped Step2:delivered Step3:delivered",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			clock := pmtest.NewClock(time.Now())
			h := &script{}
			h.set("1/Step1", errors.New("receiver down"))
			r := start(t, s, stepsDef("Failing"), pm.Options{Clock: clock, Deliver: h.handle, RetryMin: time.Hour, RetryMax: time.Hour})
			appendFact(t, s, goFact("1"))
			r.idle(t)
			ds, err := r.Deliveries(context.Background(), "1")
			if err != nil || len(ds) != 1 || ds[0].Outcome != pm.OutcomeFailed || !ds[0].RetryAt.After(clock.Now()) {
				t.Fatalf("deliveries %+v, %v; want one failure due later", ds, err)
			}
			if p := r.parked(t); len(p) != 0 {
				t.Fatalf("Parked() = %+v, want none: the command is failing, not parked", p)
			}
			h.set("1/Step1", nil)
			if err := tt.resolve(r, ds[0].CommandID); err != nil {
				t.Fatal(err)
			}
			r.idle(t) // the clock has not moved: nothing is due by it
			if got := strings.Join(h.got(), " "); got != tt.calls {
				t.Errorf("handler got %q, want %q", got, tt.calls)
			}
			if got := outcomes(t, r, "1"); got != tt.outcomes {
				t.Errorf("deliveries %q, want %q", got, tt.outcomes)
			}
		})
	}
}

// TestDeliveryAFailingProcessDelaysNoOtherProcess: on one receiver, a process whose first
// command fails, and then is parked, holds back its own later commands only: the
// commands of a process issued after it go out meanwhile.
func TestDeliveryAFailingProcessDelaysNoOtherProcess(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	h := &script{}
	h.set("bad/Step1", errors.New("rejected"))
	r := start(t, s, stepsDef("Failing"), pm.Options{Clock: clock, Deliver: h.handle, MaxAttempts: 2, RetryMin: time.Minute})
	appendFact(t, s, goFact("bad"))
	r.idle(t)
	appendFact(t, s, goFact("good1")) // while bad's Step1 fails and waits
	r.idle(t)
	advanceToRetry(t, r, clock, "bad")
	r.idle(t)
	if p := r.parked(t); len(p) != 1 || p[0].Command.ProcessID != "bad" {
		t.Fatalf("Parked() = %+v, want bad's Step1", p)
	}
	appendFact(t, s, goFact("good2")) // while it is parked
	r.idle(t)
	byProcess := map[string][]string{}
	for _, c := range h.got() {
		pid, typ, _ := strings.Cut(c, "/")
		byProcess[pid] = append(byProcess[pid], typ)
	}
	want := map[string]string{"bad": "Step1 Step1", "good1": "Step1 Step2 Step3", "good2": "Step1 Step2 Step3"}
	for pid, w := range want {
		if got := strings.Join(byProcess[pid], " "); got != w {
			t.Errorf("%s: handler got %q, want %q", pid, got, w)
		}
	}
}

// TestDeliveryResumesAtRecordedTimesAfterRestart: a restart neither retries a failing
// command before its recorded retry time nor forgets a parked one.
func TestDeliveryResumesAtRecordedTimesAfterRestart(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	h := &script{}
	h.set("late/Step1", errors.New("down"))
	h.set("stuck/Step1", errors.New("down"))
	opts := pm.Options{Clock: clock, Deliver: h.handle, MaxAttempts: 2, RetryMin: time.Minute, RetryMax: time.Hour}
	r := start(t, s, stepsDef("Resume"), opts)
	parkStep1(t, s, r, clock, "stuck")
	appendFact(t, s, goFact("late"))
	r.idle(t)
	ds, err := r.Deliveries(context.Background(), "late")
	if err != nil || len(ds) != 1 || ds[0].Outcome != pm.OutcomeFailed {
		t.Fatalf("late's deliveries %+v, %v; want one failure", ds, err)
	}
	last := ds[0]
	r.stop(t)

	before := len(h.got())
	r = start(t, s, stepsDef("Resume"), opts)
	r.idle(t)
	if got := h.got()[before:]; len(got) != 0 {
		t.Fatalf("after the restart the handler got %v before any retry was due", got)
	}
	if p := r.parked(t); len(p) != 1 || p[0].Command.ProcessID != "stuck" || p[0].Attempts != 2 {
		t.Fatalf("after the restart Parked() = %+v, want stuck's Step1 with 2 attempts", p)
	}
	clock.Advance(last.RetryAt.Sub(clock.Now()) - time.Nanosecond)
	r.idle(t)
	if got := h.got()[before:]; len(got) != 0 {
		t.Fatalf("the handler got %v a nanosecond before the recorded retry time", got)
	}
	h.set("late/Step1", nil)
	clock.Advance(time.Nanosecond)
	r.idle(t)
	if got := strings.Join(h.got()[before:], " "); got != "late/Step1 late/Step2 late/Step3" {
		t.Fatalf("at the recorded retry time the handler got %q, want late's three commands", got)
	}
	h.set("stuck/Step1", nil)
	if err := r.Retry(context.Background(), "stuck", r.parked(t)[0].Command.ID); err != nil {
		t.Fatal(err)
	}
	r.idle(t)
	if got := outcomes(t, r, "stuck"); got != "Step1:failed Step1:failed Step1:parked Step1:retried Step1:delivered Step2:delivered Step3:delivered" {
		t.Errorf("stuck's deliveries %q", got)
	}
}

// TestRetryAndSkipNeedADeliveringManager: without a handler, or before Run, there is
// nothing to retry.
func TestRetryAndSkipNeedADeliveringManager(t *testing.T) {
	s := openStore(t, t.TempDir())
	r := start(t, s, stepsDef("None"), pm.Options{})
	if err := r.Retry(context.Background(), "1", uuid.New()); !errors.Is(err, pm.ErrNoDelivery) {
		t.Errorf("Retry without a handler = %v, want ErrNoDelivery", err)
	}
	m, err := pm.New(s, stepsDef("Later"), pm.Options{Deliver: (&script{}).handle, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Skip(context.Background(), "1", uuid.New()); !errors.Is(err, pm.ErrNoDelivery) {
		t.Errorf("Skip before Run = %v, want ErrNoDelivery", err)
	}
}

// TestCommandIDsAreUniqueToTheirStore: the same facts in two stores issue commands with
// different ids, stable in each store.
func TestCommandIDsAreUniqueToTheirStore(t *testing.T) {
	ids := make([]uuid.UUID, 2)
	for i := range ids {
		s := openStore(t, t.TempDir())
		r := start(t, s, matchDef("CateringMatch"), pm.Options{})
		appendFact(t, s, customer("42"))
		appendFact(t, s, caterer("42"))
		r.idle(t)
		ids[i] = commandID(t, r, "42", "ConfirmOrder")
	}
	if ids[0] == ids[1] {
		t.Fatalf("two stores issued the same command id %s", ids[0])
	}
}

// TestACopiedStoreIssuesTheSameCommandIDs: a copy of a data directory is the same store,
// with the same id, so it issues the same command ids as the original; removing the
// file STORE_ID from the copy before its first open gives it an id, and command ids, of
// its own, while what it had issued before keeps its ids.
func TestACopiedStoreIssuesTheSameCommandIDs(t *testing.T) {
	orig := t.TempDir()
	s := openStore(t, orig)
	r := start(t, s, matchDef("CateringMatch"), pm.Options{})
	appendFact(t, s, customer("1"))
	appendFact(t, s, caterer("1"))
	appendFact(t, s, customer("42"))
	r.idle(t)
	before := commandID(t, r, "1", "ConfirmOrder")
	r.stop(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copied, renamed := t.TempDir(), t.TempDir()
	for _, dir := range []string{copied, renamed} {
		if err := os.CopyFS(dir, os.DirFS(orig)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(renamed, "STORE_ID")); err != nil {
		t.Fatal(err)
	}
	ids := map[string]uuid.UUID{}
	for _, dir := range []string{orig, copied, renamed} {
		s := openStore(t, dir)
		r := start(t, s, matchDef("CateringMatch"), pm.Options{})
		appendFact(t, s, caterer("42"))
		r.idle(t)
		if got := commandID(t, r, "1", "ConfirmOrder"); got != before {
			t.Errorf("%s: the command issued before the copy has id %s, want %s", dir, got, before)
		}
		ids[dir] = commandID(t, r, "42", "ConfirmOrder")
		r.stop(t)
	}
	if ids[orig] != ids[copied] {
		t.Errorf("the copy issued %s, the original %s: want the same id, the copy being the same store", ids[copied], ids[orig])
	}
	if ids[renamed] == ids[orig] {
		t.Errorf("the copy without STORE_ID issued the original's command id %s", ids[orig])
	}
}

// TestUnmatchedEventsAreCountedAndLoggedRateLimited: a handled event without the
// correlation field is counted by type; it is logged at most once a minute per type,
// the line saying how many were not logged since.
func TestUnmatchedEventsAreCountedAndLoggedRateLimited(t *testing.T) {
	s := openStore(t, t.TempDir())
	clock := pmtest.NewClock(time.Now())
	var logs lockedLog
	r := start(t, s, matchDef("Unmatched"), pm.Options{Clock: clock, Logger: logs.logger()})
	noID := pmd.Event{Type: "CustomerConfirmedMenu", Data: map[string]any{"order": "1"}}
	for range 3 {
		appendFact(t, s, noID)
	}
	appendFact(t, s, pmd.Event{Type: "CatererConfirmedMenu", Data: map[string]any{}})
	r.idle(t)
	clock.Advance(time.Minute)
	appendFact(t, s, noID)
	r.idle(t)
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Unmatched["CustomerConfirmedMenu"] != 4 || st.Unmatched["CatererConfirmedMenu"] != 1 || len(st.Unmatched) != 2 {
		t.Errorf("Unmatched = %v, want 4 CustomerConfirmedMenu and 1 CatererConfirmedMenu", st.Unmatched)
	}
	lines := logs.lines("belongs to no process")
	want := []string{
		"type=CustomerConfirmedMenu position=1 reason=\"it has no process id\" suppressed=0",
		"type=CatererConfirmedMenu position=4 reason=\"it has no process id\" suppressed=0",
		"type=CustomerConfirmedMenu position=5 reason=\"it has no process id\" suppressed=2",
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("log line %d = %s\nwant it to say %s", i, lines[i], w)
		}
	}
}

// TestStatsLag: the lag counts the log positions from the oldest handled event not done
// to the newest one, and is 0 once the manager caught up.
func TestStatsLag(t *testing.T) {
	s := openStore(t, t.TempDir())
	m, err := pm.New(s, matchDef("Lag"), pm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	appendFact(t, s, customer("1"))
	if _, err := s.Append(context.Background(), "Other", pmd.Any, pmd.EventData{Type: "Unrelated"}); err != nil {
		t.Fatal(err)
	}
	appendFact(t, s, caterer("1"))
	if _, err := s.Append(context.Background(), "Other", pmd.Any, pmd.EventData{Type: "Unrelated"}); err != nil {
		t.Fatal(err)
	}
	st, err := m.Stats(context.Background())
	if err != nil || st.Lag != 3 {
		t.Fatalf("Stats before Run = %+v, %v; want a lag of 3 (positions 1 to 3)", st, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := m.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Stats(context.Background()); err != nil || st.Lag != 0 {
		t.Errorf("Stats after catching up = %+v, %v; want no lag", st, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// lockedLog collects a logger's lines.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// lines returns the lines that contain s.
func (l *lockedLog) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}
