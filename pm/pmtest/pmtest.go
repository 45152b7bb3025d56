// Package pmtest tests process managers without a store: give a definition facts, check
// the commands it issues, in one order or in every order.
//
//	pmtest.Given(t, def, customerConfirmed("42"), catererConfirmed("42")).
//		Expect(confirmOrder("42"))
//
// Scenarios run the definition through pm.Memory, which decides exactly as the runtime
// does: the same replay of the process stream, the same "each command key once per
// process" rule, the same deadlines, and event data passed through the store's encoding.
package pmtest

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/vmihailenco/msgpack/v5"
)

// epoch is where every scenario's clock starts, so that failures print the same times
// on every run.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Fact returns an event of type typ with data, to hand to a scenario.
func Fact(typ string, data map[string]any) pmd.Event {
	return pmd.Event{Type: typ, Data: data}
}

// Scenario is a definition running in memory, fed facts and clock moves by a test.
type Scenario[S any] struct {
	t testing.TB
	m *pm.Memory[S]
}

// Given starts a scenario of def at a fixed time and hands it facts, in order.
func Given[S any](t testing.TB, def pm.Definition[S], facts ...pmd.Event) *Scenario[S] {
	t.Helper()
	m, err := pm.NewMemory(def, epoch)
	if err != nil {
		t.Fatalf("pmtest: %v", err)
	}
	s := &Scenario[S]{t: t, m: m}
	return s.When(facts...)
}

// When hands the scenario more facts, in order.
func (s *Scenario[S]) When(facts ...pmd.Event) *Scenario[S] {
	s.t.Helper()
	for i, f := range facts {
		if _, err := s.m.Handle(f); err != nil {
			s.t.Fatalf("pmtest: fact %d (%s): %v", i, f.Type, err)
		}
	}
	return s
}

// After moves the clock on by d and fires the deadlines that are due.
func (s *Scenario[S]) After(d time.Duration) *Scenario[S] {
	s.t.Helper()
	if _, err := s.m.Advance(d); err != nil {
		s.t.Fatalf("pmtest: after %v: %v", d, err)
	}
	return s
}

// Now is the scenario's clock.
func (s *Scenario[S]) Now() time.Time { return s.m.Now() }

// Commands returns every command issued since the scenario began, in order.
func (s *Scenario[S]) Commands() []pm.Command { return s.m.Commands() }

// State returns the state of process id.
func (s *Scenario[S]) State(id string) S {
	st, _ := s.m.State(id)
	return st
}

// Process returns the stream, state, commands and deadlines of process id.
func (s *Scenario[S]) Process(id string) pm.Process {
	p, _ := s.m.Process(id)
	return p
}

// Expect checks that the commands issued since the scenario began are want, in any
// order. A command matches on Type and Data, and on Key and ProcessID where want sets
// them; data is compared after the store's encoding, so 42 and int64(42) match.
func (s *Scenario[S]) Expect(want ...pm.Command) *Scenario[S] {
	s.t.Helper()
	if msg := Diff(s.m.Commands(), want); msg != "" {
		s.t.Errorf("pmtest: %s", msg)
	}
	return s
}

// Diff compares issued commands with want the way Expect does and describes the
// difference, or returns "" when they match.
func Diff(got, want []pm.Command) string {
	left := append([]pm.Command(nil), got...)
	var missing []pm.Command
	for _, w := range want {
		i := indexOf(left, w)
		if i < 0 {
			missing = append(missing, w)
			continue
		}
		left = append(left[:i], left[i+1:]...)
	}
	if len(missing) == 0 && len(left) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "issued %d commands, expected %d", len(got), len(want))
	for _, c := range missing {
		fmt.Fprintf(&b, "\n  missing:    %s", describe(c))
	}
	for _, c := range left {
		fmt.Fprintf(&b, "\n  unexpected: %s", describe(c))
	}
	return b.String()
}

func indexOf(cmds []pm.Command, w pm.Command) int {
	for i, c := range cmds {
		if c.Type != w.Type ||
			w.Key != "" && c.Key != w.Key ||
			w.ProcessID != "" && c.ProcessID != w.ProcessID ||
			!sameData(c.Data, w.Data) {
			continue
		}
		return i
	}
	return -1
}

// sameData compares event data the way a reader of the store sees it: after the
// store's encoding, with integers of any width equal when their values are.
func sameData(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	da, erra := decoded(a)
	db, errb := decoded(b)
	if erra != nil || errb != nil {
		return reflect.DeepEqual(a, b)
	}
	return reflect.DeepEqual(da, db)
}

func decoded(m map[string]any) (any, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	if err := msgpack.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return canonical(v), nil
}

// canonical turns every integer into an int64 (a uint64 above its range) and every
// float into a float64.
func canonical(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = canonical(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonical(e)
		}
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	case float32:
		return float64(x)
	}
	return v
}

func describe(c pm.Command) string {
	s := c.Type
	if c.Key != "" && c.Key != c.Type {
		s += " key=" + c.Key
	}
	if c.ProcessID != "" {
		s += " process=" + c.ProcessID
	}
	return s + fmt.Sprintf(" data=%v", c.Data)
}

// MaxFacts is the most facts EveryOrder takes: 8 facts already make 40,320 orders.
const MaxFacts = 8

// EveryOrder runs a scenario of def for every order of facts, each as a subtest named
// by the order (e.g. "2,0,1"), and calls check on it. A fact given twice with the same
// ID is a redelivery of one event; without an ID each fact is a distinct event.
func EveryOrder[S any](t *testing.T, def pm.Definition[S], facts []pmd.Event, check func(t *testing.T, s *Scenario[S])) {
	t.Helper()
	if len(facts) > MaxFacts {
		t.Fatalf("pmtest: EveryOrder: %d facts make too many orders; at most %d", len(facts), MaxFacts)
	}
	order := make([]int, len(facts))
	for i := range order {
		order[i] = i
	}
	for {
		name := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(order)), ","), "[]")
		run := make([]pmd.Event, len(facts))
		for i, j := range order {
			run[i] = facts[j]
		}
		t.Run(name, func(t *testing.T) {
			check(t, Given(t, def, run...))
		})
		if !nextPermutation(order) {
			return
		}
	}
}

// nextPermutation turns p into the next permutation in lexicographic order and reports
// false once p was the last one.
func nextPermutation(p []int) bool {
	i := len(p) - 2
	for i >= 0 && p[i] >= p[i+1] {
		i--
	}
	if i < 0 {
		return false
	}
	j := len(p) - 1
	for p[j] <= p[i] {
		j--
	}
	p[i], p[j] = p[j], p[i]
	for l, r := i+1, len(p)-1; l < r; l, r = l+1, r-1 {
		p[l], p[r] = p[r], p[l]
	}
	return true
}

// Clock is a pm.Clock that moves only when told to. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock showing now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Until returns a channel that receives once the clock reads t or later.
func (c *Clock) Until(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{t, ch})
	return ch
}

// Advance moves the clock on by d and wakes every Until that is due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
}
