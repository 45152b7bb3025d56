package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
)

// statesEnv is an env whose process manager M keeps in its state every field of the
// data of the events E of process p, cloning the map at each event, as the processes of
// a config file do (config.State.Data): the states of a page are maps of their own.
func statesEnv(t *testing.T, opts Options) *env {
	t.Helper()
	procs := &pmProcesses{}
	opts.Processes = procs
	e := newEnv(t, opts)
	def := pm.Definition[map[string]any]{
		Name: "M", Handles: []string{"E"}, ProcessID: pm.DataField("p"),
		Init: func(string) map[string]any { return map[string]any{} },
		Apply: func(s map[string]any, ev pmd.Event) map[string]any {
			s = maps.Clone(s)
			maps.Copy(s, ev.Data)
			return s
		},
		Decide: func(map[string]any) []pm.Command { return nil },
	}
	m, err := pm.New(e.store, def, pm.Options{Logger: quiet(), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	procs.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// appendKeys appends n events E of process a, each with k fields of its own.
func (e *env) appendKeys(t *testing.T, n, k int) {
	for i := range n {
		data := map[string]any{"p": "a"}
		for j := range k {
			data[fmt.Sprintf("k%d_%d", i, j)] = j
		}
		e.append("Facts$1", nil, ev("E", data)).must(t, http.StatusCreated)
	}
	e.waitIdle(t)
}

// TestProcessHoldsStates: GET /v1/processes/{name}/{id} reserves what the states it
// shows take of the memory budget, each once made (pm.PageOptions.HoldState), held
// until the answer is written: a process whose state grows with its events, maps
// cloned at each, held uncounted a page of such states, each many times its JSON, for
// every client that asked and did not read.
func TestProcessHoldsStates(t *testing.T) {
	const events, keys, limit = 60, 40, 10
	e := statesEnv(t, Options{})
	e.appendKeys(t, events, keys)
	p, err := e.srv.opts.Processes.(*pmProcesses).m.ProcessPage(context.Background(), "a", -1, limit)
	if err != nil {
		t.Fatal(err)
	}
	var clones []map[string]any
	took := int64(allocatedBy(func() {
		for _, s := range p.States {
			clones = append(clones, maps.Clone(s.(map[string]any)))
		}
	}))
	runtime.KeepAlive(clones)

	held, capacity, body := heldAnswer(t, e, fmt.Sprintf("/v1/processes/M/a?limit=%d", limit))
	if strings.Count(body, `"type":"E"`) != limit {
		t.Fatalf("GET /v1/processes/M/a: %.300s, want %d events", body, limit)
	}
	if held < int64(capacity)+took {
		t.Errorf("held %d for an answer of %d and %d states that take %d", held, capacity, limit, took)
	}
}

// TestProcessStateBeyondTheBudget: a process whose state takes more than the whole
// memory budget is answered when no other request holds bytes of the budget, and while
// another does it is refused as a page of an event that large is: 503 naming the
// process stream and the version, without Retry-After, holding nothing after.
func TestProcessStateBeyondTheBudget(t *testing.T) {
	e := statesEnv(t, Options{MaxBody: 64 << 10, PageBytes: 64 << 10, MemoryBudget: 1})
	e.appendKeys(t, 4, 500)

	e.do("GET", "/v1/processes/M/a?limit=1", nil).must(t, http.StatusOK)
	refusedBeyondBudget(t, e, "/v1/processes/M/a?limit=1", `"M$a"`, "after version 3")
}
