package pm_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The crash test runs the store and a Manager in a child process (this test binary,
// re-executed) while it appends the facts of hundreds of orders, and kills it with
// SIGKILL at random points: while facts are appended and handled, and later while the
// deadlines of the incomplete orders fire. After the last restart every process must
// have every fact linked exactly once, exactly one ConfirmOrder if complete, exactly one
// CancelOrder if not, and every command delivered.

const (
	crashDirEnv  = "PMD_PM_CRASH_DIR"
	crashModeEnv = "PMD_PM_CRASH_MODE" // "facts", or "expire" to run 72h ahead
	crashSeedEnv = "PMD_PM_CRASH_SEED"
	crashSizeEnv = "PMD_PM_CRASH_ORDERS"
)

// crashFact is one fact of the plan both processes derive from the seed.
type crashFact struct {
	id    uuid.UUID
	typ   string
	order string
}

// crashPlan returns the facts of orders orders in append order, and which orders are
// complete. Order i gets: i%4 == 0 the customer's confirmation only, 1 the caterer's
// only, 2 and 3 both; every fifth its last confirmation twice.
func crashPlan(seed uint64, orders int) ([]crashFact, map[string]bool) {
	rng := rand.New(rand.NewPCG(seed, 7))
	var facts []crashFact
	complete := map[string]bool{}
	add := func(typ, order string) {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d/%d", seed, len(facts)))
		facts = append(facts, crashFact{id, typ, order})
	}
	for i := range orders {
		order := fmt.Sprintf("o%03d", i)
		complete[order] = i%4 >= 2
		if i%4 != 1 {
			add("CustomerConfirmedMenu", order)
		}
		if i%4 != 0 {
			add("CatererConfirmedMenu", order)
		}
		if i%5 == 0 {
			add(facts[len(facts)-1].typ, order) // the same confirmation again
		}
	}
	rng.Shuffle(len(facts), func(i, j int) { facts[i], facts[j] = facts[j], facts[i] })
	return facts, complete
}

// offsetClock is the wall clock moved by a fixed offset, so that a child can run
// "72 hours later" and find every deadline due.
type offsetClock time.Duration

func (c offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c)) }
func (c offsetClock) Until(t time.Time) <-chan time.Time {
	return time.After(t.Sub(c.Now()))
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKill9 as its child process")
	}
	die := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(2)
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	orders, _ := strconv.Atoi(os.Getenv(crashSizeEnv))
	var offset time.Duration
	if os.Getenv(crashModeEnv) == "expire" {
		offset = 72 * time.Hour
	}
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet()})
	if err != nil {
		die("open", err)
	}
	delivered, err := os.OpenFile(filepath.Join(dir, "delivered"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		die("open delivered", err)
	}
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{
		Clock: offsetClock(offset), Logger: quiet(), Workers: 16, CheckpointEvery: 7,
		Deliver: func(_ context.Context, c pm.Command) error {
			_, err := fmt.Fprintln(delivered, c.ID)
			return err
		},
	})
	if err != nil {
		die("new", err)
	}
	ctx := context.Background()
	// Report the cancellations issued by this run only.
	from := s.LastPosition() + 1
	go func() { die("run", m.Run(ctx)) }()
	go func() {
		for e, err := range s.Subscribe(ctx, pmd.SubscribeOptions{Types: []string{"CancelOrder"}, From: from}) {
			if err != nil {
				die("subscribe", err)
			}
			say("cancelled %s", e.Stream)
		}
	}()

	// Appending every fact of the plan again is safe: a fact already stored is an exact
	// retry, which writes nothing. When expiring, every fact is in already.
	facts, _ := crashPlan(seed, orders)
	if offset > 0 {
		facts = nil
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(facts); i += 4 {
				f := facts[i]
				e := pmd.EventData{ID: f.id, Type: f.typ, Data: map[string]any{"order_id": f.order}}
				if _, err := s.Append(ctx, "Confirmations$"+f.id.String(), pmd.Any, e); err != nil {
					die("append", err)
				}
				say("ack %d", i)
			}
		}()
	}
	wg.Wait()
	if err := m.WaitIdle(ctx); err != nil {
		die("wait", err)
	}
	say("idle")
	select {} // until killed
}

func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("child")
	}
	orders, rounds := 300, 4
	if testing.Short() {
		orders, rounds = 120, 2
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	facts, complete := crashPlan(seed, orders)
	incomplete := 0
	for _, c := range complete {
		if !c {
			incomplete++
		}
	}
	child := func(mode string, stop func(line string) bool) {
		t.Helper()
		runChild(t, dir, mode, seed, orders, stop)
	}
	counter := func(prefix string, n int) func(string) bool {
		seen := 0
		return func(line string) bool {
			if strings.HasPrefix(line, prefix) {
				seen++
			}
			return seen >= n || line == "idle"
		}
	}
	// Kill while facts are appended and handled, then once more after all is handled.
	for range rounds {
		child("facts", counter("ack ", 1+rng.IntN(len(facts))))
	}
	child("facts", counter("idle", 1))
	// Kill while the deadlines fire, then let them all fire.
	for range rounds {
		child("expire", counter("cancelled ", rng.IntN(incomplete)))
	}
	child("expire", counter("idle", 1))

	s := openStore(t, dir)
	byOrder := map[string][]uuid.UUID{}
	for _, f := range facts {
		byOrder[f.order] = append(byOrder[f.order], f.id)
	}
	var commands []uuid.UUID
	for order, ids := range byOrder {
		events := processStream(t, s, "CateringMatch$"+order)
		links, cmds := tally(t, events)
		linked := map[uuid.UUID]bool{}
		for _, e := range events {
			if e.Link {
				linked[e.ID] = true
			}
			if e.Metadata[pm.MetaKind] == pm.KindCommand {
				commands = append(commands, e.ID)
			}
		}
		for _, id := range ids {
			if !linked[id] {
				t.Errorf("order %s: fact %s is not linked", order, id)
			}
		}
		want := map[string]int{"CancelOrder": 1}
		if complete[order] {
			want = map[string]int{"ConfirmOrder": 1}
		}
		if links != len(ids) || fmt.Sprint(cmds) != fmt.Sprint(want) {
			t.Errorf("order %s: %d links of %d facts, commands %v, want %v", order, links, len(ids), cmds, want)
		}
	}
	if len(commands) != orders {
		t.Errorf("%d commands for %d orders", len(commands), orders)
	}
	// Every command was handed to the handler at least once, and its delivery recorded.
	raw, err := os.ReadFile(filepath.Join(dir, "delivered"))
	if err != nil {
		t.Fatal(err)
	}
	handed := map[string]bool{}
	for _, line := range strings.Fields(string(raw)) {
		handed[line] = true
	}
	m, err := pm.New(s, matchDef("CateringMatch"), pm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[uuid.UUID]bool{}
	for order := range byOrder {
		ds, err := m.Deliveries(context.Background(), order)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Delivered() {
				recorded[d.CommandID] = true
			}
		}
	}
	for _, id := range commands {
		if !handed[id.String()] || !recorded[id] {
			t.Errorf("command %s: handed to the handler %v, delivery recorded %v", id, handed[id.String()], recorded[id])
		}
	}
}

// runChild runs the child on dir until stop says so for a line it printed, then kills
// it with SIGKILL. A child that does not get there within a minute is killed and fails
// the test.
func runChild(t *testing.T, dir, mode string, seed uint64, orders int, stop func(string) bool) {
	t.Helper()
	runChildTest(t, "TestCrashChild", dir, mode, seed, orders, stop)
}

// runChildTest is runChild for the child test named child.
func runChildTest(t *testing.T, child, dir, mode string, seed uint64, orders int, stop func(string) bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashDirEnv+"="+dir, crashModeEnv+"="+mode,
		crashSeedEnv+"="+strconv.FormatUint(seed, 10), crashSizeEnv+"="+strconv.Itoa(orders))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hung := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer hung.Stop()
	sc := bufio.NewScanner(stdout)
	stopped := false
	for sc.Scan() {
		if stop(sc.Text()) {
			stopped = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	cmd.Wait()
	if !stopped {
		t.Fatalf("child (%s) ended before it was killed: %s", mode, stderr.String())
	}
}
