package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// fakeProcesses is one process manager "M" with processes "1" to "5"; process "1"
// holds whatever event the test says.
type fakeProcesses struct {
	holds      string   // event id held by M$1
	statesLost bool     // M$1 comes without the states after its events, a broken implementation
	done       []string // the retries and skips made, "retried <id>" or "skipped <id>"
}

func (f *fakeProcesses) Managers(context.Context) ([]Manager, error) {
	return []Manager{{Name: "M", Handles: []string{"A", "B"}, Open: 3, Completed: 1, Expired: 1, Lag: new(uint64)}}, nil
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
		Commands: []Command{{ID: "c1", Type: "C", Position: 3, Delivered: true, Status: "delivered",
			Attempts: []Attempt{
				{Attempt: 1, Outcome: "failed", At: time.Unix(1, 0).UTC(), Error: "503", RetryAt: &retry},
				{Attempt: 2, Outcome: "failed", At: retry, Error: "503"},
				{Attempt: 2, Outcome: "parked", At: retry, Error: "503"},
				{Attempt: 2, Outcome: "retried", At: retry},
				{Attempt: 3, Outcome: "delivered", At: retry},
			}}},
		Deadlines:        []Deadline{{Due: time.Unix(3, 0).UTC(), Issue: "D"}},
		DeliveriesStream: "M.deliveries$1", DeliveriesVersion: 1,
	}, nil
}

// Parked: M has two parked commands of process "1", at positions 10 and 20.
// It returns only the page q asks for, as the daemon does.
func (f *fakeProcesses) Parked(_ context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	if name != "M" {
		return ParkedPage{}, fmt.Errorf("no process manager %q: %w", name, ErrNotFound)
	}
	if q.Limit <= 0 {
		return ParkedPage{}, fmt.Errorf("asked for all the parked commands (limit %d), not a page", q.Limit)
	}
	list := []ParkedCommand{
		{ProcessID: "1", ID: parkedA, Type: "C", Data: map[string]any{"n": 1}, Position: 10, Attempts: 3, Error: "503"},
		{ProcessID: "1", ID: parkedB, Type: "D", Data: map[string]any{}, Position: 20, Receiver: "r", Attempts: 5, Error: "timeout"},
	}
	page := ParkedPage{Total: 2}
	for _, pc := range list {
		if pc.Position < q.From {
			continue
		}
		if len(page.Parked) == q.Limit {
			next := pc.Position
			page.Next = &next
			break
		}
		page.Parked = append(page.Parked, pc)
	}
	return page, nil
}

// The commands of fakeProcesses: parkedA and parkedB parked, busy being delivered.
const (
	parkedA = "0190c1d2-0000-7000-8000-00000000000a"
	parkedB = "0190c1d2-0000-7000-8000-00000000000b"
	busy    = "0190c1d2-0000-7000-8000-00000000000c"
)

func (f *fakeProcesses) Retry(ctx context.Context, name, id string, command uuid.UUID) error {
	return f.operate(ctx, "retried", name, id, command)
}

func (f *fakeProcesses) Skip(ctx context.Context, name, id string, command uuid.UUID) error {
	return f.operate(ctx, "skipped", name, id, command)
}

func (f *fakeProcesses) operate(_ context.Context, what, name, id string, command uuid.UUID) error {
	switch {
	case name != "M" || id != "1":
		return fmt.Errorf("no process %q of %q: %w", id, name, ErrNotFound)
	case command.String() == busy:
		return fmt.Errorf("command %s is being delivered: %w", command, ErrConflict)
	case command.String() != parkedA && command.String() != parkedB:
		return fmt.Errorf("no command %s awaiting delivery: %w", command, ErrNotFound)
	}
	f.done = append(f.done, what+" "+command.String())
	return nil
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
	if want := `{"processes":[{"completed":1,"delivery_attempts":0,"delivery_failures":0,"expired":1,"handles":["A","B"],"lag":0,"name":"M","open":3,"parked":0}]}`; string(got) != want {
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
	if c["delivered"] != true || c["status"] != "delivered" {
		t.Fatalf("process commands: %s", r.raw)
	}
	// A deadline listed is pending: it says when and what, and no "fired" (always false
	// before it went: one that fired is a record in events).
	got, _ = json.Marshal(r.body["deadlines"])
	if want := `[{"due":"1970-01-01T00:00:03Z","issue":"D"}]`; string(got) != want {
		t.Errorf("deadlines %s\nwant %s", got, want)
	}
	// Attempts are numbered; a failed one says when it is retried, a delivered one not.
	got, _ = json.Marshal(c["attempts"])
	if want := `[{"at":"1970-01-01T00:00:01Z","attempt":1,"error":"503","outcome":"failed","retry_at":"1970-01-01T00:00:02Z"},` +
		`{"at":"1970-01-01T00:00:02Z","attempt":2,"error":"503","outcome":"failed"},` +
		`{"at":"1970-01-01T00:00:02Z","attempt":2,"error":"503","outcome":"parked"},` +
		`{"at":"1970-01-01T00:00:02Z","attempt":2,"outcome":"retried"},` +
		`{"at":"1970-01-01T00:00:02Z","attempt":3,"outcome":"delivered"}]`; string(got) != want {
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

// overLimitParked is fakeProcesses whose Parked answers every parked command, whatever
// the limit asked for: a broken implementation.
type overLimitParked struct{ fakeProcesses }

func (f *overLimitParked) Parked(ctx context.Context, name string, q ParkedQuery) (ParkedPage, error) {
	q.Limit = 1000
	return f.fakeProcesses.Parked(ctx, name, q)
}

// TestParkedOverLimit: a Processes answering more parked commands than ?limit= asks
// for has the route cut them to the limit, next being the first it left out.
func TestParkedOverLimit(t *testing.T) {
	e := newEnv(t, Options{Processes: &overLimitParked{}})
	r := e.do("GET", "/v1/processes/M/parked?limit=1", nil).must(t, http.StatusOK)
	list, _ := r.body["parked"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != parkedA || r.body["next"] != num(20) || r.body["total"] != num(2) {
		t.Fatalf("parked, limit 1, from a Processes answering 2: %s, want %s alone and next 20", r.raw, parkedA)
	}
}

// TestParkedRetrySkip: the parked list of a manager, paged by limit, and retry and
// skip of a command by its process and id, each refused by name when it cannot be done.
func TestParkedRetrySkip(t *testing.T) {
	fake := &fakeProcesses{}
	e := newEnv(t, Options{Processes: fake})

	r := e.do("GET", "/v1/processes/M/parked", nil).must(t, http.StatusOK)
	want := `{"next":null,"parked":[{"attempts":3,"data":{"n":1},"error":"503","id":"` + parkedA + `","position":10,"process_id":"1","receiver":"","type":"C"},` +
		`{"attempts":5,"data":{},"error":"timeout","id":"` + parkedB + `","position":20,"process_id":"1","receiver":"r","type":"D"}],"total":2}`
	if got, _ := json.Marshal(r.body); string(got) != want {
		t.Fatalf("parked %s\nwant %s", got, want)
	}
	r = e.do("GET", "/v1/processes/M/parked?limit=1", nil).must(t, http.StatusOK)
	if list := r.body["parked"].([]any); len(list) != 1 || r.body["total"] != num(2) {
		t.Fatalf("parked, limit 1: %s", r.raw)
	}

	cmd := func(id, command, op string) string {
		return "/v1/processes/M/" + id + "/commands/" + command + "/" + op
	}
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"retry", cmd("1", parkedA, "retry"), "", http.StatusNoContent, ""},
		{"skip", cmd("1", parkedB, "skip"), "", http.StatusNoContent, ""},
		{"being delivered", cmd("1", busy, "retry"), "", http.StatusConflict, "conflict"},
		{"unknown command", cmd("1", "0190c1d2-0000-7000-8000-0000000000ff", "skip"), "", http.StatusNotFound, "not_found"},
		{"unknown process", cmd("2", parkedA, "retry"), "", http.StatusNotFound, "not_found"},
		{"not a UUID", cmd("1", "c1", "retry"), "", http.StatusBadRequest, "bad_request"},
		{"a body", cmd("1", parkedA, "skip"), `{"why":"x"}`, http.StatusBadRequest, "bad_request"},
		{"a query", cmd("1", parkedA, "retry") + "?force=1", "", http.StatusBadRequest, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.call("POST", tt.path, tt.body, "", nil)
			if status != tt.status || tt.code != "" && !strings.Contains(body, `"error":"`+tt.code+`"`) {
				t.Fatalf("status %d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	if want := []string{"retried " + parkedA, "skipped " + parkedB}; !slices.Equal(fake.done, want) {
		t.Fatalf("done %q, want %q", fake.done, want)
	}
	e.do("GET", "/v1/processes/Nope/parked", nil).mustError(t, http.StatusNotFound, "not_found")
	e.do("GET", "/v1/processes/M/parked?after=x", nil).mustError(t, http.StatusBadRequest, "bad_request")

	none := newEnv(t, Options{})
	none.do("GET", "/v1/processes/M/parked", nil).mustError(t, http.StatusNotFound, "not_found")
	if status, _ := none.call("POST", cmd("1", parkedA, "retry"), "", "", nil); status != http.StatusNotFound {
		t.Fatalf("retry without process managers: %d", status)
	}
}

// lister is a fakeProcesses that filters and orders its listings: it records the
// query it was asked, but its Hold, and whether it had one.
type lister struct {
	fakeProcesses
	asked ListQuery
	held  bool
}

func (l *lister) ListProcesses(_ context.Context, name string, q ListQuery) (ProcessListPage, error) {
	if name != "M" {
		return ProcessListPage{}, fmt.Errorf("no manager %q: %w", name, ErrNotFound)
	}
	if q.After == "bad" {
		return ProcessListPage{}, fmt.Errorf("%q is not a next of this order: %w", q.After, ErrInvalid)
	}
	l.held, q.Hold = q.Hold != nil, nil
	l.asked = q
	created := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	last := created.Add(time.Minute)
	return ProcessListPage{Processes: []ProcessSummary{{ID: "7", Status: "open", Version: 1, Events: 1, Deadlines: 1,
		Created: &created, LastActivity: &last, Parked: 1}}, Next: "1795800000000000000/7"}, nil
}

// TestProcessListFilters: the process-list route hands status, ages and the order to a
// ProcessLister, refuses what it cannot mean, and refuses filters without a lister.
func TestProcessListFilters(t *testing.T) {
	l := &lister{}
	e := newEnv(t, Options{Processes: l})
	r := e.do("GET", "/v1/processes/M?status=open&older_than=1h&idle_for=30m&sort=age&limit=5&after=abc", nil).must(t, http.StatusOK)
	want := ListQuery{Status: "open", OlderThan: time.Hour, IdleFor: 30 * time.Minute, ByAge: true, After: "abc", Limit: 5}
	if !reflect.DeepEqual(l.asked, want) || !l.held {
		t.Errorf("asked %+v (with a Hold: %v), want %+v with one", l.asked, l.held, want)
	}
	p := r.body["processes"].([]any)[0].(map[string]any)
	if r.body["next"] != "1795800000000000000/7" || p["created"] != "2026-11-28T18:00:00Z" || p["last_activity"] != "2026-11-28T18:01:00Z" || fmt.Sprint(p["parked"]) != "1" {
		t.Errorf("answer %s", r.raw)
	}
	e.do("GET", "/v1/processes/M", nil).must(t, http.StatusOK)
	if want := (ListQuery{Limit: 100}); !reflect.DeepEqual(l.asked, want) {
		t.Errorf("without a query, asked %+v, want %+v", l.asked, want)
	}
	for _, q := range []string{"status=stuck", "sort=oldest", "older_than=1", "idle_for=-1h", "after=bad"} {
		e.do("GET", "/v1/processes/M?"+q, nil).mustError(t, http.StatusBadRequest, "bad_request")
	}
	e.do("GET", "/v1/processes/Nope?status=open", nil).mustError(t, http.StatusNotFound, "not_found")

	plain := newEnv(t, Options{Processes: &fakeProcesses{}})
	plain.do("GET", "/v1/processes/M?limit=1", nil).must(t, http.StatusOK)
	plain.do("GET", "/v1/processes/M?status=open", nil).mustError(t, http.StatusBadRequest, "bad_request")
}
