package pmtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

func TestNextPermutationVisitsEveryOrderOnce(t *testing.T) {
	for n, want := range []int{1, 1, 2, 6, 24, 120} {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		seen := map[string]bool{}
		for {
			key := fmt.Sprint(p)
			if seen[key] {
				t.Fatalf("n=%d: %v visited twice", n, p)
			}
			seen[key] = true
			if !nextPermutation(p) {
				break
			}
		}
		if len(seen) != want {
			t.Fatalf("n=%d: %d orders, want %d", n, len(seen), want)
		}
	}
}

// counter issues Count once a process has seen three Tick events: the smallest
// definition whose outcome depends on how many facts, not which.
type counter struct {
	ID string
	N  int
}

func counterDef() pm.Definition[counter] {
	return pm.Definition[counter]{
		Name:      "Counter",
		Handles:   []string{"Tick"},
		ProcessID: pm.DataField("id"),
		Init:      func(id string) counter { return counter{ID: id} },
		Apply: func(s counter, e pmd.Event) counter {
			if e.Link {
				s.N++
			}
			return s
		},
		Decide: func(s counter) []pm.Command {
			if s.N >= 3 {
				return []pm.Command{{Type: "Count", Data: map[string]any{"id": s.ID, "n": 3}}}
			}
			return nil
		},
	}
}

func tick(id string) pmd.Event { return Fact("Tick", map[string]any{"id": id}) }

func TestEveryOrderRunsEachOrder(t *testing.T) {
	var orders []string
	facts := []pmd.Event{tick("a"), tick("b"), tick("a"), tick("a")}
	EveryOrder(t, counterDef(), facts, func(t *testing.T, s *Scenario[counter]) {
		orders = append(orders, t.Name())
		s.Expect(pm.Command{Type: "Count", Data: map[string]any{"id": "a", "n": int64(3)}, ProcessID: "a"})
		if got := s.State("b").N; got != 1 {
			t.Errorf("process b saw %d ticks, want 1", got)
		}
	})
	if len(orders) != 24 {
		t.Fatalf("%d orders run, want 24", len(orders))
	}
	if !strings.HasSuffix(orders[0], "/0,1,2,3") || !strings.HasSuffix(orders[23], "/3,2,1,0") {
		t.Fatalf("orders run from %s to %s", orders[0], orders[23])
	}
}

func TestDiff(t *testing.T) {
	a := pm.Command{Type: "A", Data: map[string]any{"n": 1}, ProcessID: "1", Key: "A"}
	b := pm.Command{Type: "B", ProcessID: "2", Key: "B"}
	tests := []struct {
		name string
		got  []pm.Command
		want []pm.Command
		diff []string // substrings of the message; nil when they match
	}{
		{"equal in another order", []pm.Command{a, b}, []pm.Command{b, a}, nil},
		{"numbers compare by value", []pm.Command{a}, []pm.Command{{Type: "A", Data: map[string]any{"n": uint64(1)}}}, nil},
		{"unset key and process match any", []pm.Command{a}, []pm.Command{{Type: "A", Data: map[string]any{"n": 1}}}, nil},
		{"nothing", nil, nil, nil},
		{"missing", []pm.Command{a}, []pm.Command{a, b}, []string{"issued 1 commands, expected 2", "missing:    B process=2"}},
		{"unexpected", []pm.Command{a, a}, []pm.Command{a}, []string{"unexpected: A process=1 data=map[n:1]"}},
		{"other data", []pm.Command{a}, []pm.Command{{Type: "A", Data: map[string]any{"n": "1"}}}, []string{"missing:", "unexpected:"}},
		{"other process", []pm.Command{a}, []pm.Command{{Type: "A", Data: map[string]any{"n": 1}, ProcessID: "9"}}, []string{"missing:    A process=9"}},
		{"other key", []pm.Command{a}, []pm.Command{{Type: "A", Data: map[string]any{"n": 1}, Key: "x"}}, []string{"missing:    A key=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := Diff(tt.got, tt.want)
			if (msg == "") != (tt.diff == nil) {
				t.Fatalf("Diff = %q, want a difference: %v", msg, tt.diff != nil)
			}
			for _, s := range tt.diff {
				if !strings.Contains(msg, s) {
					t.Errorf("Diff = %q, want it to say %q", msg, s)
				}
			}
		})
	}
}

// recorder is a testing.TB that records failures instead of failing, so that the
// helpers' own failures can be checked.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestExpectReportsWrongCommands(t *testing.T) {
	r := &recorder{TB: t}
	Given(r, counterDef(), tick("a"), tick("a")).Expect(pm.Command{Type: "Count"})
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "missing:    Count") {
		t.Fatalf("Expect reported %q, want one missing Count", r.errors)
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	now := c.Until(start.Add(-time.Hour))
	soon := c.Until(start.Add(time.Minute))
	later := c.Until(start.Add(time.Hour))
	select {
	case got := <-now:
		if !got.Equal(start) {
			t.Fatalf("Until(the past) delivered %v, want %v", got, start)
		}
	default:
		t.Fatal("Until(the past) did not fire at once")
	}
	c.Advance(59 * time.Second)
	select {
	case <-soon:
		t.Fatal("Until(+1m) fired after 59s")
	default:
	}
	c.Advance(time.Second)
	if got := <-soon; !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("Until(+1m) delivered %v", got)
	}
	select {
	case <-later:
		t.Fatal("Until(+1h) fired after 1m")
	default:
	}
	c.Advance(2 * time.Hour)
	<-later
	if got := c.Now(); !got.Equal(start.Add(2*time.Hour + time.Minute)) {
		t.Fatalf("Now() = %v", got)
	}
}
