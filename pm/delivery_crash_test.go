package pm_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// The delivery crash test kills a child running a Manager (each process issues Step1,
// Step2, Step3) and a Subscription of the same facts with SIGKILL while their
// deliveries fail and are retried. In every other run each command and event fails its
// first attempt; Step2 of every seventh process and the tenth event fail
// always, and are parked after maxAttempts. Afterwards, in this process: the parked
// ones are still parked (and not attempted), every other command and event was
// delivered, and once retried the parked ones go out too; the subscription's
// deliveries, first occurrences kept, are in log order.

const (
	crashProcesses  = 42
	crashMaxAttempt = 3
	crashPoisonN    = 10 // the fact the subscription parks on
)

// poisoned reports whether the command c always fails.
func poisoned(c pm.Command) bool {
	n, _ := strconv.Atoi(c.ProcessID)
	return c.Type == "Step2" && n%7 == 0
}

// crashFactN is the n of a fact.
func crashFactN(e pmd.Event) int {
	n, _ := strconv.Atoi(fmt.Sprint(e.Data["n"]))
	return n
}

func TestDeliveryCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	mode := os.Getenv(crashModeEnv)
	if dir == "" || !strings.HasPrefix(mode, "deliver") {
		t.Skip("run by TestDeliveryKill9 as its child process")
	}
	die := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(2)
	}
	s, err := pmd.Open(dir, pmd.Options{Logger: quiet()})
	if err != nil {
		die("open", err)
	}
	out, err := os.OpenFile(filepath.Join(dir, "handed"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		die("open handed", err)
	}
	var mu sync.Mutex
	tried := map[string]bool{} // failed once in this run
	flaky := mode == "deliver-flaky"
	// fail says whether the attempt at key fails: poison always, the rest once in a
	// flaky run. Flaky runs alternate with others, so that no key but the poison fails
	// maxAttempts times in a row. A success is written down before the handler returns.
	fail := func(key string, poison bool) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Println("attempt")
		if poison || flaky && !tried[key] {
			tried[key] = true
			return fmt.Errorf("receiver refused %s", key)
		}
		if _, err := fmt.Fprintln(out, key); err != nil {
			die("write handed", err)
		}
		return nil
	}
	opts := pm.Options{Logger: quiet(), MaxAttempts: crashMaxAttempt, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Deliver: func(_ context.Context, c pm.Command) error { return fail("command "+c.ID.String(), poisoned(c)) }}
	m, err := pm.New(s, stepsDef("Steps"), opts)
	if err != nil {
		die("new", err)
	}
	sub, err := pm.NewSubscription(s, "sub", pm.Filter{Types: []string{"Go"}}, pm.SubscriptionOptions{
		Logger: quiet(), MaxAttempts: crashMaxAttempt, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		SaveEvery: time.Millisecond,
		Deliver: func(_ context.Context, e pmd.Event) error {
			return fail("event "+e.ID.String(), crashFactN(e) == crashPoisonN)
		},
	})
	if err != nil {
		die("subscription", err)
	}
	ctx := context.Background()
	go func() { die("run", m.Run(ctx)) }()
	go func() { die("subscription run", sub.Run(ctx)) }()
	for i := 1; i <= crashProcesses; i++ {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "go %d", i))
		e := pmd.EventData{ID: id, Type: "Go", Data: map[string]any{"id": strconv.Itoa(i), "n": i}}
		if _, err := s.Append(ctx, "Facts", pmd.Any, e); err != nil { // again after a restart: an exact retry writes nothing
			die("append", err)
		}
	}
	if err := m.WaitIdle(ctx); err != nil {
		die("wait", err)
	}
	if err := sub.WaitIdle(ctx); err != nil {
		die("wait subscription", err)
	}
	fmt.Println("idle")
	select {} // until killed
}

func TestDeliveryKill9(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	attempts := func(n int) func(string) bool {
		seen := 0
		return func(line string) bool {
			if line == "attempt" {
				seen++
			}
			return seen >= n || line == "idle"
		}
	}
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	// Kill while deliveries fail and are retried, in runs where everything fails
	// once; then let a run where only the poison fails get idle.
	for i := range rounds {
		mode := "deliver"
		if i%2 == 0 {
			mode = "deliver-flaky"
		}
		runChildTest(t, "TestDeliveryCrashChild", dir, mode, seed, 0, attempts(1+rng.IntN(3*crashProcesses)))
	}
	runChildTest(t, "TestDeliveryCrashChild", dir, "deliver-last", seed, 0, attempts(1<<30))

	raw, err := os.ReadFile(filepath.Join(dir, "handed"))
	if err != nil {
		t.Fatal(err)
	}
	handed := map[string]bool{}
	var firstEvents []string // event ids as first delivered
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if !handed[line] && strings.HasPrefix(line, "event ") {
			firstEvents = append(firstEvents, strings.TrimPrefix(line, "event "))
		}
		handed[line] = true
	}

	// This process takes over with a receiver that accepts everything.
	s := openStore(t, dir)
	ctx := context.Background()
	var mu sync.Mutex
	var late []string
	accept := func(key string) error {
		mu.Lock()
		defer mu.Unlock()
		late = append(late, key)
		return nil
	}
	m := start(t, s, stepsDef("Steps"), pm.Options{MaxAttempts: crashMaxAttempt,
		Deliver: func(_ context.Context, c pm.Command) error { return accept("command " + c.ID.String()) }})
	sub := startSub(t, s, "sub", pm.Filter{Types: []string{"Go"}}, pm.SubscriptionOptions{MaxAttempts: crashMaxAttempt,
		Deliver: func(_ context.Context, e pmd.Event) error { return accept("event " + e.ID.String()) }})
	m.idle(t)
	sub.idle(t)

	// The parked ones are still parked, and were not attempted.
	var wantParked []string
	for i := 7; i <= crashProcesses; i += 7 {
		wantParked = append(wantParked, strconv.Itoa(i)+"/Step2")
	}
	var gotParked []string
	for _, p := range m.parked(t) {
		gotParked = append(gotParked, p.Command.ProcessID+"/"+p.Command.Type)
		if p.Attempts < crashMaxAttempt {
			t.Errorf("parked %s/%s after %d attempts", p.Command.ProcessID, p.Command.Type, p.Attempts)
		}
	}
	slices.Sort(gotParked)
	slices.Sort(wantParked)
	if !slices.Equal(gotParked, wantParked) {
		t.Fatalf("parked commands %v, want %v", gotParked, wantParked)
	}
	st := sub.status(t)
	if len(st.Parked) != 1 || crashFactN(st.Parked[0].Event) != crashPoisonN {
		t.Fatalf("the subscription's parked events: %+v, want the fact n=%d", st.Parked, crashPoisonN)
	}
	mu.Lock()
	for _, key := range late {
		if strings.HasPrefix(key, "event ") {
			t.Errorf("%s was delivered while the subscription was parked", key)
		}
	}
	mu.Unlock()

	// Released, everything goes out.
	for _, p := range m.parked(t) {
		if err := m.Retry(ctx, p.Command.ProcessID, p.Command.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Retry(ctx, st.Parked[0].Event.ID); err != nil {
		t.Fatal(err)
	}
	m.idle(t)
	sub.idle(t)
	mu.Lock()
	for _, key := range late {
		if !handed[key] && strings.HasPrefix(key, "event ") {
			firstEvents = append(firstEvents, strings.TrimPrefix(key, "event "))
		}
		handed[key] = true
	}
	mu.Unlock()

	// No command lost: each was delivered and its delivery recorded.
	commands := 0
	for i := 1; i <= crashProcesses; i++ {
		id := strconv.Itoa(i)
		recorded := map[uuid.UUID]bool{}
		ds, err := m.Deliveries(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Delivered() {
				recorded[d.CommandID] = true
			}
		}
		for _, e := range processStream(t, s, "Steps$"+id) {
			if e.Metadata[pm.MetaKind] != pm.KindCommand {
				continue
			}
			commands++
			if !handed["command "+e.ID.String()] || !recorded[e.ID] {
				t.Errorf("process %s: %s %s handed %v, recorded %v", id, e.Type, e.ID, handed["command "+e.ID.String()], recorded[e.ID])
			}
		}
	}
	if commands != 3*crashProcesses {
		t.Errorf("%d commands issued, want %d", commands, 3*crashProcesses)
	}
	// Every event was delivered, first in log order.
	var want []string
	for e, err := range s.ReadStream(ctx, "Facts", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID.String())
	}
	if !slices.Equal(firstEvents, want) {
		t.Errorf("the subscription's first deliveries\n%v\nwant, in log order,\n%v", firstEvents, want)
	}
}
