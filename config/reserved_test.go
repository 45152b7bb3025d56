package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/pm/pmtest"
)

// TestReservedKeysRefusedInIssueList: an issue list keys each command by its type, so
// an entry whose type is a key pmd reserves (complete, the key of an issue mapping's
// command; deadline, the deadline's) would be taken for that command: it completed or
// expired the process, or, next to a deadline, made every decision fail. Such an entry
// is refused at load, at its type, naming the file, the manager and the entry.
func TestReservedKeysRefusedInIssueList(t *testing.T) {
	const head = "processes:\n  - name: Shipping\n    correlate_by: order_id\n    handles: [PaymentReceived, ItemsPicked]\n    issue:\n"
	const deadline = "    deadline:\n      after: 48h\n      issue: {type: CancelOrder}\n"
	tests := []struct {
		name, issue string
		line, col   int
		what        string
	}{
		{"complete with when", "      - type: complete\n        when: seen.PaymentReceived >= 1\n      - type: ShipOrder\n",
			6, 15, `process manager "Shipping": issue[0]: type "complete"`},
		{"complete without when", "      - type: ShipOrder\n      - {type: complete}\n",
			7, 16, `process manager "Shipping": issue[1]: type "complete"`},
		{"deadline", "      - type: ShipOrder\n      - type: deadline\n        when: seen.PaymentReceived >= 1\n",
			7, 15, `process manager "Shipping": issue[1]: type "deadline"`},
		{"deadline next to a deadline", "      - type: deadline\n        when: seen.PaymentReceived >= 1\n      - type: ShipOrder\n" + deadline,
			6, 15, `process manager "Shipping": issue[0]: type "deadline"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pmd.yaml")
			if err := os.WriteFile(path, []byte(head+tt.issue), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			var errs Errors
			if cfg != nil || !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("got %+v, %v; want one error and no config", cfg, err)
			}
			want := fmt.Sprintf("%s:%d:%d: %s is reserved in an issue list", path, tt.line, tt.col, tt.what)
			if got := errs[0].Error(); !strings.HasPrefix(got, want) {
				t.Fatalf("got\n%s\nwant\n%s…", got, want)
			}
		})
	}
}

// TestReservedNamesElsewhereStillWork: complete and deadline are refused only as the
// type of an issue list entry. As the type of an issue mapping's command or of the
// deadline's, whose keys do not depend on their types, they behave like any type; so
// does a list entry whose type only looks like one (Complete, deadline_passed).
func TestReservedNamesElsewhereStillWork(t *testing.T) {
	paid := func(id string) pmd.Event {
		return pmtest.Fact("PaymentReceived", map[string]any{"order_id": id})
	}
	picked := func(id string) pmd.Event {
		return pmtest.Fact("ItemsPicked", map[string]any{"order_id": id})
	}
	parse := func(t *testing.T, src string) pm.Definition[State] {
		t.Helper()
		cfg, err := Parse("pmd.yaml", []byte("processes:\n  - name: Shipping\n    correlate_by: order_id\n    handles: [PaymentReceived, ItemsPicked]\n"+src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Processes[0].Definition()
	}

	t.Run("issue mapping of type complete", func(t *testing.T) {
		def := parse(t, "    issue: {type: complete}\n    deadline: {after: 1h, issue: {type: deadline}}\n")
		s := pmtest.Given(t, def, paid("1"))
		s.Expect()
		if st := s.State("1"); st.Completed || st.Expired {
			t.Fatalf("after one fact: %+v", st)
		}
		s.When(picked("1")).Expect(pm.Command{Type: "complete", Key: KeyComplete, ProcessID: "1", Data: map[string]any{"order_id": "1"}})
		if st := s.State("1"); !st.Completed || st.Expired {
			t.Fatalf("after both facts: %+v", st)
		}
		// The deadline's command, of type deadline, expires a process not complete.
		s = pmtest.Given(t, def, paid("2")).After(2 * time.Hour)
		s.Expect(pm.Command{Type: "deadline", Key: KeyDeadline, ProcessID: "2", Data: map[string]any{"order_id": "2"}})
		if st := s.State("2"); st.Completed || !st.Expired {
			t.Fatalf("after the deadline: %+v", st)
		}
	})

	t.Run("issue list of lookalike types", func(t *testing.T) {
		def := parse(t, "    issue:\n      - type: Complete\n        when: seen.PaymentReceived >= 1\n      - type: deadline_passed\n"+
			"    deadline: {after: 48h, issue: {type: CancelOrder}}\n")
		cmd := func(typ string) pm.Command {
			return pm.Command{Type: typ, Key: typ, ProcessID: "1", Data: map[string]any{"order_id": "1"}}
		}
		s := pmtest.Given(t, def, paid("1"), paid("1"))
		s.Expect(cmd("Complete"))
		if st := s.State("1"); st.Completed || st.Expired {
			t.Fatalf("after payment: %+v", st)
		}
		s.When(picked("1")).Expect(cmd("Complete"), cmd("deadline_passed"))
		if st := s.State("1"); !st.Completed || st.Expired {
			t.Fatalf("after both facts: %+v", st)
		}
	})
}

// TestCompletesInAnIssueList: in an issue list only an entry without when completes
// the process when issued, whatever its key; the key KeyComplete means complete only
// for the command of an issue mapping.
func TestCompletesInAnIssueList(t *testing.T) {
	when := parseCondition(t, "seen.A >= 1", []string{"A"})
	list := Process{IssueList: true, Issues: []Command{{Type: KeyComplete, When: &when}, {Type: "B"}}}
	mapping := Process{Issues: []Command{{Type: "B"}}}
	for _, tt := range []struct {
		name     string
		p        Process
		key, typ string
		want     bool
	}{
		{"list entry with when", list, KeyComplete, KeyComplete, false},
		{"list entry without when", list, "B", "B", true},
		{"unknown key of a list", list, "C", "C", false},
		{"a list, the command of the mapping it was before", list, KeyComplete, "B", true},
		{"mapping", mapping, KeyComplete, "B", true},
		{"mapping, its type", mapping, "B", "B", false},
	} {
		if got := tt.p.completes(tt.key, tt.typ); got != tt.want {
			t.Errorf("%s: completes(%q, %q) = %t, want %t", tt.name, tt.key, tt.typ, got, tt.want)
		}
	}
}

// TestCompletedByAMappingStaysCompleteInAList: a process that completed while its file
// had an issue mapping (its command recorded under the key complete) is still complete
// once the file has an issue list, so its deadline can no longer expire it.
func TestCompletedByAMappingStaysCompleteInAList(t *testing.T) {
	list := Process{IssueList: true, Issues: []Command{{Type: "Ship"}}}
	for _, tt := range []struct {
		typ  string
		want bool
	}{
		{"Ship", true},       // the mapping's command
		{KeyComplete, false}, // a list entry of type complete, refused now
	} {
		cmd := pmd.Event{Type: tt.typ, Metadata: map[string]any{pm.MetaKind: pm.KindCommand, pm.MetaKey: KeyComplete}}
		if got := list.apply(State{}, cmd).Completed; got != tt.want {
			t.Errorf("a command of type %q and key complete: Completed %t, want %t", tt.typ, got, tt.want)
		}
	}
}
