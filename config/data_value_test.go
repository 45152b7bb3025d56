package config

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// TestCommandDataIsWhatTheStoreKeeps: every data value of a command reads back from the
// store as the expression language names it, or is null and reported. event and state
// are objects with the names expressions use (event.type, state.seen); a value JSON
// cannot hold (a function in a list or an object, an object whose keys are not strings)
// is refused before it is written (a function alone is refused at load): the store
// refused the function, and the keys made a record no read could decode, either way
// stopping the process manager, and so pmd serve, at every start.
func TestCommandDataIsWhatTheStoreKeeps(t *testing.T) {
	cases := []struct {
		expr     string
		want     any    // the value read back from the command
		reported string // in the reported error; "" when none is
	}{
		{expr: "event", want: map[string]any{"id": "ID", "type": "Paid", "stream": "Facts", "data": map[string]any{"order_id": "1", "n": int8(2)}}},
		{expr: "state", want: map[string]any{"id": "1", "seen": map[string]any{"Paid": int8(1)}, "data": map[string]any{"order_id": "1", "n": int8(2)}, "events": int8(1)}},
		{expr: "[event.type, state.seen]", want: []any{"Paid", map[string]any{"Paid": int8(1)}}},
		{expr: `fromJSON(toJSON(event)).type`, want: "Paid"},
		{expr: "groupBy(['a', 'b'], #)", want: map[string]any{"a": []any{"a"}, "b": []any{"b"}}},
		{expr: "groupBy([1, 2], # % 2)", want: nil, reported: ", not a string: a JSON object's keys are strings"},
		{expr: "{'x': fromPairs([[true, 1]])}", want: nil, reported: "v.x has the key true, not a string"},
		{expr: "{'at': now().Add}", want: nil, reported: "v.at is a function, not a JSON value"},
		{expr: "[1, now().Unix]", want: nil, reported: "v[1] is a function, not a JSON value"},
		{expr: "timezone('UTC')", want: nil, reported: "v is not a JSON value"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte("processes:\n  - name: Ship\n    correlate_by: order_id\n    handles: [Paid]\n"+
				"    issue: {type: ShipOrder, data: {v: \""+strings.ReplaceAll(c.expr, `"`, `\"`)+"\"}}\n"))
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var reports []ExpressionError
			def := cfg.Processes[0].DefinitionReporting(func(e ExpressionError) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, e)
			})
			data := readCommandData(t, def)
			want := c.want
			if m, ok := want.(map[string]any); ok && m["id"] == "ID" {
				want = map[string]any{"id": data["fact"], "type": m["type"], "stream": m["stream"], "data": m["data"]}
			}
			if got := data["v"]; !reflect.DeepEqual(got, want) {
				t.Errorf("v = %#v, want %#v", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case c.reported == "" && len(reports) > 0:
				t.Errorf("reported %v", reports)
			case c.reported != "" && (len(reports) == 0 || !strings.Contains(reports[0].Error(), c.reported)):
				t.Errorf("reported %v, want an error with %q", reports, c.reported)
			}
		})
	}
}

// readCommandData runs def on a store with one Paid fact of order 1 and returns the data
// of the command it wrote, read back from the store, with the fact's id under "fact".
func readCommandData(t *testing.T, def pm.Definition[State]) map[string]any {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := pm.New(s, def, pm.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	res, err := s.Append(ctx, "Facts", pmd.Any, pmd.EventData{Type: "Paid", Data: map[string]any{"order_id": "1", "n": 2}})
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	idle := make(chan error, 1)
	go func() { idle <- m.WaitIdle(wait) }()
	select {
	case err := <-done:
		t.Fatalf("the process manager stopped: %v", err)
	case err := <-idle:
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("the process manager stopped: %v", err)
	}
	for e, err := range s.ReadStream(context.Background(), "Ship$1", pmd.ReadOptions{}) {
		if err != nil {
			t.Fatalf("read Ship$1: %v", err)
		}
		if e.Type == "ShipOrder" {
			e.Data["fact"] = res.IDs[0].String()
			return e.Data
		}
	}
	t.Fatal("no ShipOrder in Ship$1")
	return nil
}
