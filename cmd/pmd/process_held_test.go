package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/pm"
)

// TestProcessViewsCarryDamageAndPanic: the daemon serves what pm knows of a process
// that its views left out: the versions of the damaged records a view passed over, and
// the panic of the definition that holds the process, in the process and in the list;
// pmd process prints them. A process whose only command record was damaged showed no
// command and nothing saying why, and a held process only showed as a growing lag.
func TestProcessViewsCarryDamageAndPanic(t *testing.T) {
	const panicked = "pm: M$1: Apply panicked at version 4: boom\x1b[2J"
	p := &processes{}
	v, err := p.view(context.Background(), "M", "1", pm.Process{Name: "M", ID: "1", Stream: "M$1", Status: pm.StatusOpen,
		Damaged: []int64{1, 3}, Panic: panicked, Older: -1, DeliveriesVersion: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.Damaged, []int64{1, 3}) || v.Panic != panicked {
		t.Errorf("process view: damaged %v, panic %q; want [1 3] and the panic", v.Damaged, v.Panic)
	}
	list := summaries([]pm.ProcessSummary{{ID: "1", Status: pm.StatusOpen, Damaged: 2, Panic: panicked, Created: time.Now()}})
	if list[0].Damaged != 2 || list[0].Panic != panicked {
		t.Errorf("list: damaged %d, panic %q; want 2 and the panic", list[0].Damaged, list[0].Panic)
	}

	var b bytes.Buffer
	printProcess(&b, client.Process{Manager: "M", ID: "1", Stream: "M$1", Status: "open", Damaged: []int64{1, 3}, Panic: panicked})
	out := b.String()
	for _, want := range []string{"panicked at version 4: boom [2J", "held", "damaged records passed over: versions 1, 3", "pmd repair"} {
		if !strings.Contains(out, want) {
			t.Errorf("pmd process printed:\n%s\nwant it to say %q", out, want)
		}
	}
	if i := strings.IndexFunc(out, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }); i >= 0 {
		t.Errorf("printed a control character at byte %d:\n%q", i, out)
	}
	b.Reset()
	printProcess(&b, client.Process{Manager: "M", ID: "1", Stream: "M$1", Status: "open"})
	if out := b.String(); strings.Contains(out, "damaged") || strings.Contains(out, "panic") {
		t.Errorf("pmd process of a process neither held nor damaged printed:\n%s", out)
	}
}
