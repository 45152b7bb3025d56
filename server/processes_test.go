package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// fakeProcesses is one process manager "M" with processes "1" to "5"; process "1"
// holds whatever event the test says.
type fakeProcesses struct {
	holds      string // event id held by M$1
	statesLost bool   // M$1 comes without the states after its events, a broken implementation
}

func (f *fakeProcesses) Managers(context.Context) ([]Manager, error) {
	return []Manager{{Name: "M", Handles: []string{"A", "B"}, Open: 3, Completed: 1, Expired: 1}}, nil
}

func (f *fakeProcesses) List(_ context.Context, name, after string, limit int) ([]ProcessSummary, error) {
	if name != "M" {
		return nil, fmt.Errorf("no process manager %q: %w", name, ErrNotFound)
	}
	var out []ProcessSummary
	for i := 1; i <= 5 && len(out) < limit; i++ {
		if id := fmt.Sprint(i); id > after {
			out = append(out, ProcessSummary{ID: id, Status: "open", Version: 1, Events: 1})
		}
	}
	return out, nil
}

func (f *fakeProcesses) Process(_ context.Context, name, id string) (Process, error) {
	if name != "M" || id != "1" {
		return Process{}, fmt.Errorf("no process %q of %q: %w", id, name, ErrNotFound)
	}
	retry := time.Unix(2, 0).UTC()
	states := []any{map[string]any{"seen": 1}, map[string]any{"seen": 2}}
	if f.statesLost {
		states = nil
	}
	return Process{
		Manager: "M", ID: "1", Stream: "M$1", Status: "completed",
		State: map[string]any{"seen": 2},
		Events: []pmd.Event{
			{Type: "A", Stream: "Facts", Version: 0, Link: true, Position: 1, Timestamp: time.Unix(0, 0)},
			{Type: "B", Stream: "Other", Version: 1, Link: true, Position: 2, Timestamp: time.Unix(0, 0)},
		},
		States: states,
		Commands: []Command{{ID: "c1", Type: "C", Position: 3, Delivered: true,
			Attempts: []Attempt{{Attempt: 1, At: time.Unix(1, 0).UTC(), Error: "503", RetryAt: &retry}, {Attempt: 2, At: retry}}}},
		DeliveriesStream: "M.deliveries$1", DeliveriesVersion: 1,
	}, nil
}

func (f *fakeProcesses) Holding(_ context.Context, ev pmd.Event) ([]string, error) {
	if ev.ID.String() == f.holds {
		return []string{"M$1"}, nil
	}
	return nil, nil
}

func TestProcessRoutes(t *testing.T) {
	fake := &fakeProcesses{}
	e := newEnv(t, Options{Processes: fake})

	r := e.do("GET", "/v1/processes", nil).must(t, http.StatusOK)
	got, _ := json.Marshal(r.body)
	if want := `{"processes":[{"completed":1,"expired":1,"handles":["A","B"],"name":"M","open":3}]}`; string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}

	r = e.do("GET", "/v1/processes/M?limit=2", nil).must(t, http.StatusOK)
	if list := r.body["processes"].([]any); len(list) != 2 || r.body["next"] != "2" {
		t.Fatalf("first page: %s", r.raw)
	}
	r = e.do("GET", "/v1/processes/M?limit=2&after=4", nil).must(t, http.StatusOK)
	if list := r.body["processes"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != "5" || r.body["next"] != nil {
		t.Fatalf("last page: %s", r.raw)
	}
	e.do("GET", "/v1/processes/Nope", nil).mustError(t, http.StatusNotFound, "not_found")
	e.do("GET", "/v1/processes/M?limit=x", nil).mustError(t, http.StatusBadRequest, "bad_request")

	r = e.do("GET", "/v1/processes/M/1", nil).must(t, http.StatusOK)
	if r.body["status"] != "completed" || r.body["stream"] != "M$1" {
		t.Fatalf("process: %s", r.raw)
	}
	evs := r.events(t)
	if len(evs) != 2 || evs[0]["link"] != true || evs[0]["version"] != num(0) || evs[0]["stream"] != "Facts" {
		t.Fatalf("process events: %s", r.raw)
	}
	// Each event carries the state after it.
	for i, want := range []string{`{"seen":1}`, `{"seen":2}`} {
		if got, _ := json.Marshal(evs[i]["state"]); string(got) != want {
			t.Errorf("events[%d].state = %s, want %s", i, got, want)
		}
	}
	if r.body["deliveries_stream"] != "M.deliveries$1" || r.body["deliveries_version"] != num(1) {
		t.Errorf("deliveries stream %v at %v, want M.deliveries$1 at 1", r.body["deliveries_stream"], r.body["deliveries_version"])
	}
	cmds := r.body["commands"].([]any)
	c := cmds[0].(map[string]any)
	if c["delivered"] != true || r.body["deadlines"] == nil {
		t.Fatalf("process commands: %s", r.raw)
	}
	// Attempts are numbered; a failed one says when it is retried, a delivered one not.
	got, _ = json.Marshal(c["attempts"])
	if want := `[{"at":"1970-01-01T00:00:01Z","attempt":1,"error":"503","retry_at":"1970-01-01T00:00:02Z"},{"at":"1970-01-01T00:00:02Z","attempt":2}]`; string(got) != want {
		t.Errorf("attempts %s\nwant %s", got, want)
	}
	e.do("GET", "/v1/processes/M/2", nil).mustError(t, http.StatusNotFound, "not_found")
	// A process whose states do not match its events is a bug behind the API, not a
	// timeline with states missing.
	fake.statesLost = true
	e.do("GET", "/v1/processes/M/1", nil).mustError(t, http.StatusInternalServerError, "internal")
	fake.statesLost = false

	// The event route names the process streams holding an event.
	e.append("Facts", nil, ev("A", nil)).must(t, http.StatusCreated)
	fake.holds = e.do("GET", "/v1/streams/Facts", nil).events(t)[0]["id"].(string)
	r = e.do("GET", "/v1/events/"+fake.holds, nil).must(t, http.StatusOK)
	if streams := r.body["streams"].([]any); len(streams) != 2 || streams[1] != "M$1" {
		t.Fatalf("streams of a held event: %s", r.raw)
	}

	m := string(e.do("GET", "/metrics", nil).must(t, http.StatusOK).raw)
	for _, want := range []string{`pmd_processes{manager="M",status="open"} 3`, `pmd_processes{manager="M",status="expired"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
