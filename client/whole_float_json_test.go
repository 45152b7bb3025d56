package client_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// floatProcesses is processes with floats that have no fraction in the state, the
// states after the events and the commands' data, as a config file's
// `event.data.amount / 2` makes them.
type floatProcesses struct{ processes }

func wholeFloats() map[string]any {
	return map[string]any{"amount": float64(2), "big": 1e20, "n": int64(2), "list": []any{float64(4)}}
}

func (p floatProcesses) Process(ctx context.Context, name, id string) (server.Process, error) {
	out, err := p.processes.Process(ctx, name, id)
	out.State, out.States = wholeFloats(), []any{wholeFloats()}
	for i := range out.Commands {
		out.Commands[i].Data = wholeFloats()
	}
	return out, err
}

func (p floatProcesses) Parked(ctx context.Context, name string, q server.ParkedQuery) (server.ParkedPage, error) {
	page, err := p.processes.Parked(ctx, name, q)
	for i := range page.Parked {
		page.Parked[i].Data = wholeFloats()
	}
	return page, err
}

// checkWholeFloats checks that m is wholeFloats as the embedded store gives it.
func checkWholeFloats(t *testing.T, what string, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T %v, want a map", what, v, v)
	}
	for _, f := range []string{"amount", "big"} {
		if _, ok := m[f].(float64); !ok {
			t.Errorf("%s.%s is %T %v, want a float64", what, f, m[f], m[f])
		}
	}
	if _, ok := m["n"].(int64); !ok {
		t.Errorf("%s.n is %T %v, want an int64", what, m["n"], m["n"])
	}
	if l, _ := m["list"].([]any); len(l) != 1 {
		t.Errorf("%s.list is %v", what, m["list"])
	} else if _, ok := l[0].(float64); !ok {
		t.Errorf("%s.list[0] is %T, want a float64", what, l[0])
	}
}

// A process's state and its commands' data keep their floats with no fraction floats,
// as events' data does: the daemon wrote them 2, which ReadProcess and Parked read as
// int64(2) (and 1e20 as a float only because no integer holds it).
func TestProcessWholeFloatsKeepTheirType(t *testing.T) {
	d := startDaemon(t, server.Options{Processes: floatProcesses{}}, nil)
	c := newClient(t, d.url)
	ctx := context.Background()
	p, err := c.Process(ctx, "CateringMatch", "42")
	if err != nil {
		t.Fatal(err)
	}
	checkWholeFloats(t, "state", p.State)
	checkWholeFloats(t, "events[0].state", p.Events[0].State)
	checkWholeFloats(t, "commands[0].data", p.Commands[0].Data)
	parked, err := c.Parked(ctx, "CateringMatch", 0)
	if err != nil {
		t.Fatal(err)
	}
	checkWholeFloats(t, "parked[0].data", parked.Parked[0].Data)
}

// The types whose JSON form is the API's write a float with no fraction as the API
// does, 2.0: written 2 (and 1e20 as 100000000000000000000), what pmd read --json or
// pmd process --json printed was read back as integers, and the daemon refused 1e20
// as an integer outside the 64-bit range when it was appended again.
func TestTypesWriteWholeFloatsAsTheAPIDoes(t *testing.T) {
	const data = `{"amount":2.0,"big":100000000000000000000.0,"list":[4.0],"n":2}`
	id := uuid.MustParse("0190c1d2-0000-7000-8000-000000000001")
	version := uint64(3)
	ev := client.Event{ID: id, Type: "Priced", Data: wholeFloats(), Metadata: map[string]any{"score": float64(6)},
		Timestamp: time.Unix(0, 0).UTC(), Position: 7, Stream: "Order$1", Version: &version}
	evJSON := `{"id":"0190c1d2-0000-7000-8000-000000000001","type":"Priced","data":` + data +
		`,"metadata":{"score":6.0},"timestamp":"1970-01-01T00:00:00Z","position":7,"stream":"Order$1","version":3,"link":false`
	command := client.Command{ID: "c1", Type: "Confirm", Data: wholeFloats(), Status: "pending", Attempts: []client.Attempt{}}
	commandJSON := `{"id":"c1","type":"Confirm","data":` + data + `,"position":0,"delivered":false,"status":"pending","version":0,"attempts":[],"attempts_next":null}`
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"Event", ev, evJSON + `}`},
		{"*Event", &ev, evJSON + `}`},
		{"ProcessEvent", client.ProcessEvent{Event: ev, State: float64(3)}, evJSON + `,"state":3.0}`},
		{"Command", command, commandJSON},
		{"ParkedCommand", client.ParkedCommand{ProcessID: "42", ID: "c1", Type: "Confirm", Data: wholeFloats(), Attempts: 3},
			`{"process_id":"42","id":"c1","type":"Confirm","data":` + data + `,"position":0,"receiver":"","attempts":3,"error":""}`},
		{"Process", client.Process{Manager: "M", ID: "1", Stream: "M$1", State: wholeFloats(),
			Events: []client.ProcessEvent{{Event: ev, State: wholeFloats()}}, Commands: []client.Command{command}},
			`{"manager":"M","id":"1","stream":"M$1","status":"","erased":false,"state":` + data +
				`,"events":[` + evJSON + `,"state":` + data + `}],"commands":[` + commandJSON + `],"deadlines":null,` +
				`"deliveries_stream":"","deliveries_version":0,"older":null,"commands_next":null,"snapshot":null,"damaged":null,"panic":""}`},
		{"Page", client.Page{Events: []client.Event{ev}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if !strings.Contains(string(got), data) {
					t.Errorf("got %s\nwant data %s in it", got, data)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, ok := ev.Data["amount"].(float64); !ok {
		t.Errorf("the event's data was changed: amount is %T", ev.Data["amount"])
	}
}

// TestJSONFormRoundTrips: each type's JSON form, decoded with encoding/json and written
// again, is what it was, with the types the client reads: before UnmarshalJSON, every
// number came back a float64, and an integer was written back 2.0, to be stored a float.
func TestJSONFormRoundTrips(t *testing.T) {
	ev := client.Event{ID: uuid.New(), Type: "T", Data: wholeFloats(), Metadata: wholeFloats(), Timestamp: time.Unix(1, 0).UTC()}
	for _, tc := range []struct {
		name  string
		v     any
		back  func() any
		check func(t *testing.T, v any)
	}{
		{"Event", ev, func() any { return new(client.Event) }, func(t *testing.T, v any) {
			e := v.(*client.Event)
			checkWholeFloats(t, "data", e.Data)
			checkWholeFloats(t, "metadata", e.Metadata)
		}},
		{"ProcessEvent", client.ProcessEvent{Event: ev, State: wholeFloats()}, func() any { return new(client.ProcessEvent) }, func(t *testing.T, v any) {
			e := v.(*client.ProcessEvent)
			checkWholeFloats(t, "data", e.Data)
			checkWholeFloats(t, "state", e.State)
		}},
		{"Command", client.Command{ID: "c", Type: "C", Data: wholeFloats()}, func() any { return new(client.Command) }, func(t *testing.T, v any) {
			checkWholeFloats(t, "data", v.(*client.Command).Data)
		}},
		{"ParkedCommand", client.ParkedCommand{ID: "c", Type: "C", Data: wholeFloats()}, func() any { return new(client.ParkedCommand) }, func(t *testing.T, v any) {
			checkWholeFloats(t, "data", v.(*client.ParkedCommand).Data)
		}},
		{"Process", client.Process{Manager: "M", ID: "1", State: wholeFloats(),
			Events:   []client.ProcessEvent{{Event: ev, State: wholeFloats()}},
			Commands: []client.Command{{ID: "c", Type: "C", Data: wholeFloats()}}}, func() any { return new(client.Process) }, func(t *testing.T, v any) {
			p := v.(*client.Process)
			checkWholeFloats(t, "state", p.State)
			if len(p.Events) != 1 || len(p.Commands) != 1 {
				t.Fatalf("events %d, commands %d; want 1 each", len(p.Events), len(p.Commands))
			}
			checkWholeFloats(t, "events[0].state", p.Events[0].State)
			checkWholeFloats(t, "commands[0].data", p.Commands[0].Data)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			back := tc.back()
			if err := json.Unmarshal(first, back); err != nil {
				t.Fatal(err)
			}
			tc.check(t, back)
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(first) {
				t.Errorf("written again:\n%s\nwant\n%s", again, first)
			}
		})
	}
}
