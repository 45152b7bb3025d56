package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestProcessTimeline: the process route shows the state after each event, numbers the
// delivery attempts with the retry time of a failed one, and names the stream the
// attempts are recorded in, read up to its last record.
func TestProcessTimeline(t *testing.T) {
	attempts := make(chan int32, 4)
	var n atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		attempts <- i
		if i == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer receiver.Close()

	d := startInProcess(t, cateringConfig(t, receiver.URL+"/commands"))
	ctx := context.Background()
	for _, e := range []pmd.EventData{
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "42"}},
		{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "42"}},
	} {
		if _, err := d.store.Append(ctx, "facts", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		select {
		case <-attempts:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d delivery attempts within 30s", i)
		}
	}
	if err := d.procs.managers[0].m.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(d.url + "/v1/processes/CateringMatch/42")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type state struct {
		Seen      map[string]int `json:"seen"`
		Completed bool           `json:"completed"`
	}
	var p struct {
		Events []struct {
			Type  string `json:"type"`
			Link  bool   `json:"link"`
			State state  `json:"state"`
		} `json:"events"`
		Commands []struct {
			Attempts []struct {
				Attempt int        `json:"attempt"`
				At      time.Time  `json:"at"`
				Error   string     `json:"error"`
				RetryAt *time.Time `json:"retry_at"`
			} `json:"attempts"`
		} `json:"commands"`
		DeliveriesStream  string `json:"deliveries_stream"`
		DeliveriesVersion int64  `json:"deliveries_version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}

	after := map[string]state{}
	for _, e := range p.Events {
		after[e.Type] = e.State
	}
	if s := after["CustomerConfirmedMenu"]; s.Seen["CustomerConfirmedMenu"] != 1 || s.Seen["CatererConfirmedMenu"] != 0 || s.Completed {
		t.Errorf("state after the customer's confirmation: %+v", s)
	}
	if s := after["CatererConfirmedMenu"]; s.Seen["CustomerConfirmedMenu"] != 1 || s.Seen["CatererConfirmedMenu"] != 1 || s.Completed {
		t.Errorf("state after both confirmations: %+v", s)
	}
	if s := after["ConfirmOrder"]; !s.Completed {
		t.Errorf("state after ConfirmOrder: %+v, want completed", s)
	}

	if len(p.Commands) != 1 || len(p.Commands[0].Attempts) != 2 {
		t.Fatalf("commands %+v, want one with two attempts", p.Commands)
	}
	failed, delivered := p.Commands[0].Attempts[0], p.Commands[0].Attempts[1]
	if failed.Attempt != 1 || !strings.Contains(failed.Error, "503") || failed.RetryAt == nil || failed.RetryAt.Before(failed.At) {
		t.Errorf("first attempt %+v, want attempt 1 failed with 503 and a retry after it", failed)
	}
	if delivered.Attempt != 2 || delivered.Error != "" || delivered.RetryAt != nil {
		t.Errorf("second attempt %+v, want attempt 2 delivered, no retry", delivered)
	}
	if p.DeliveriesStream != "CateringMatch.deliveries$42" || p.DeliveriesVersion != 1 {
		t.Errorf("deliveries stream %q at %d, want CateringMatch.deliveries$42 at 1", p.DeliveriesStream, p.DeliveriesVersion)
	}
}
