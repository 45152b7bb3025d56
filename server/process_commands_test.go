package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// commandsProcesses is pagedProcesses whose process "1" issued n commands, one at
// each version 0 to n-1, each with size bytes of data, paged as the daemon's process
// managers page them: from CommandsFrom, at most CommandsLimit, and no bound in bytes
// (the route's own bound is what is tested). asked is the query of the last page.
type commandsProcesses struct {
	pagedProcesses
	n, size int
	asked   ProcessQuery
}

func (f *commandsProcesses) ProcessPage(ctx context.Context, name, id string, q ProcessQuery) (Process, error) {
	f.asked = q
	p, err := f.pagedProcesses.ProcessPage(ctx, name, id, q)
	for v := q.CommandsFrom; v < int64(f.n); v++ {
		if len(p.Commands) == q.CommandsLimit {
			p.CommandsNext = &v
			break
		}
		p.Commands = append(p.Commands, Command{ID: fmt.Sprint(v), Type: "C", Version: v, Status: "pending", Attempts: []Attempt{},
			Data: map[string]any{"v": v, "pad": blob(f.size)}})
	}
	return p, err
}

// TestProcessCommandsAreBoundedInBytes: the commands of the process route take at most
// half of PageBytes (one however large), the events the rest, and commands_next walks
// every command exactly once; the route passes its query on.
func TestProcessCommandsAreBoundedInBytes(t *testing.T) {
	const pageBytes = 64 << 10
	f := &commandsProcesses{pagedProcesses: pagedProcesses{sizes: []int{1 << 10, 1 << 10}}, n: 40, size: 5 << 10}
	e := newEnv(t, Options{PageBytes: pageBytes, Processes: f})
	seen := map[string]bool{}
	from := ""
	for pages := 0; ; pages++ {
		path := "/v1/processes/M/1?commands_limit=1000&attempts_limit=7&attempts_from=3"
		if from != "" {
			path += "&commands_from=" + from
		}
		r := e.do("GET", path, nil).must(t, http.StatusOK)
		if f.asked.AttemptsLimit != 7 || f.asked.AttemptsFrom != 3 || f.asked.CommandsLimit != 1000 {
			t.Fatalf("the route asked for %+v", f.asked)
		}
		cmds, _ := r.body["commands"].([]any)
		if len(cmds) == 0 || len(r.raw) > pageBytes {
			t.Fatalf("page %d (from %q): %d commands in %d bytes", pages, from, len(cmds), len(r.raw))
		}
		if evs, _ := r.body["events"].([]any); len(evs) != 2 {
			t.Fatalf("page %d: %d events, want both: the commands leave them room", pages, len(evs))
		}
		for _, c := range cmds {
			id := c.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("page %d shows command %s again", pages, id)
			}
			seen[id] = true
		}
		if r.body["commands_next"] == nil {
			break
		}
		from = fmt.Sprint(r.body["commands_next"])
	}
	if len(seen) != f.n {
		t.Fatalf("the pages show %d commands, want %d", len(seen), f.n)
	}
	for _, bad := range []string{"commands_from=-1", "commands_limit=0", "attempts_from=x", "attempts_limit=-2"} {
		e.do("GET", "/v1/processes/M/1?"+bad, nil).must(t, http.StatusBadRequest)
	}
}

// TestParkedPages: the parked route pages with from and next, each command once.
func TestParkedPages(t *testing.T) {
	e := newEnv(t, Options{Processes: &fakeProcesses{}})
	r := e.do("GET", "/v1/processes/M/parked?limit=1", nil).must(t, http.StatusOK)
	if list, _ := r.body["parked"].([]any); len(list) != 1 || fmt.Sprint(r.body["next"]) != "20" || fmt.Sprint(r.body["total"]) != "2" {
		t.Fatalf("first page: %s", r.raw)
	}
	r = e.do("GET", "/v1/processes/M/parked?limit=1&from=20", nil).must(t, http.StatusOK)
	if list, _ := r.body["parked"].([]any); len(list) != 1 || r.body["next"] != nil || list[0].(map[string]any)["id"] != parkedB {
		t.Fatalf("second page: %s", r.raw)
	}
	e.do("GET", "/v1/processes/M/parked?from=-1", nil).must(t, http.StatusBadRequest)
}

// TestParkedPagesAreBoundedInBytes: a page of parked commands stops at PageBytes, one
// however large, and next continues from the first left out.
func TestParkedPagesAreBoundedInBytes(t *testing.T) {
	e := newEnv(t, Options{PageBytes: 50 << 10, Processes: &bigParked{}})
	r := e.do("GET", "/v1/processes/M/parked", nil).must(t, http.StatusOK)
	if list, _ := r.body["parked"].([]any); len(list) != 1 || fmt.Sprint(r.body["next"]) != "20" {
		t.Fatalf("a page of two commands of 40 KiB of data each, bounded to 50 KiB: %d bytes, next %v", len(r.raw), r.body["next"])
	}
}
