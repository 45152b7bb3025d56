package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/client"
	"github.com/pmd-dev/pmd/server"
)

// TestSubscribeTakesAnEventOfAnySize: an event's SSE data line is as long as its JSON,
// which the daemon does not bound to its request body limit (json escapes "<" as
// \u003c, six bytes for one: 12 MiB of "<", taken under the default 16 MiB limit, is
// 72 MiB sent). A line above a 64 MiB cap failed each connection at the same event, and
// the subscription reconnected to it forever without yielding it; the default
// WithMaxEventSize, 128 MiB, holds it (TestSubscribeEventSizeLimit tests the limit
// itself). The long line here is
// a comment, which the client reads as it reads a data line but need not decode (65 MiB
// of JSON takes the race detector most of a minute), before an event.
func TestSubscribeTakesAnEventOfAnySize(t *testing.T) {
	const size = 65 << 20 // above the 64 MiB the client capped a line at
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 1000\r\n\r\n:")
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, "\r\nid: 1\r\ndata: {\"id\":\"0190c1d2-0000-7000-8000-000000000001\",\"type\":\"Big\",\"position\":1}\r\n\r\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for e, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) {
		t.Errorf("dropped: %v", err)
		cancel()
	}}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "Big" || e.Position != 1 {
			t.Fatalf("got %s at %d, want Big at 1", e.Type, e.Position)
		}
		return
	}
	t.Fatalf("the subscription ended without the event: %v", ctx.Err())
}

// TestAllByType: pmd.All names the global log, as an empty Stream does and as ReadAll
// reads it, and takes a types filter, as the store's ReadStream and Subscribe do. The
// client refused ReadStream(pmd.All) with types, and sent stream=$all with types to the
// daemon, which refuses the two together.
func TestAllByType(t *testing.T) {
	d := startDaemon(t, server.Options{}, nil)
	c := newClient(t, d.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, typ := range []string{"A", "B", "A"} {
		if _, err := c.Append(ctx, "s", pmd.Any, pmd.EventData{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ReadStream(ctx, pmd.All, pmd.ReadOptions{Types: []string{"A"}})
	if err != nil {
		t.Fatal(err)
	}
	followed := collect(t, c.Subscribe(ctx, client.SubscribeOptions{Stream: pmd.All, Types: []string{"A"}}), 2)
	for _, got := range [][]client.Event{page.Events, followed} {
		if !slices.Equal(positions(got), []uint64{1, 3}) || got[0].Version != nil {
			t.Fatalf("got %+v, want the A events at positions 1 and 3, without versions", got)
		}
	}
}

// TestSubscribeReconnectsWhenNothingComes: a connection on which nothing comes, not
// even the heartbeat the daemon sends every 15 s, is dropped and made again. A follower
// relaying a leader-read subscription from a leader that hung (while a new one took
// over) sent nothing, and the subscription waited for the old leader forever. One on
// which only heartbeats come is kept, and so is one on which a long event's line
// arrives slowly, for longer than the timeout, byte after byte.
func TestSubscribeReconnectsWhenNothingComes(t *testing.T) {
	const idle = time.Second
	var mu sync.Mutex
	var lastIDs []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		event := func(pos int) {
			fmt.Fprintf(w, "id: %d\ndata: {\"id\":\"0190c1d2-0000-7000-8000-00000000000%d\",\"type\":\"E\",\"position\":%d}\n\n", pos, pos, pos)
			w.(http.Flusher).Flush()
		}
		switch n {
		case 1: // an event, then silence
			event(1)
		case 2: // heartbeats for longer than idle, then an event whose line takes as long
			tick := time.NewTicker(idle / 20)
			defer tick.Stop()
			line := fmt.Sprintf("id: 2\ndata: {\"id\":\"0190c1d2-0000-7000-8000-000000000002\",\"type\":\"E\",\"position\":2,\"data\":{\"s\":\"%s\"}}\n\n", strings.Repeat("x", 30))
			for i := range 60 {
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				}
				if i < 30 {
					fmt.Fprint(w, ": heartbeat\n\n")
				} else {
					fmt.Fprint(w, line[(i-30)*len(line)/30:(i-29)*len(line)/30])
				}
				w.(http.Flusher).Flush()
			}
		}
		<-r.Context().Done()
	}))
	defer ts.Close()
	c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond), client.WithIdleTimeout(idle))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var drops []error
	got := collect(t, c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) { drops = append(drops, err) }}), 2)
	if !slices.Equal(positions(got), []uint64{1, 2}) {
		t.Fatalf("got %+v", got)
	}
	var ce *client.ConnectionError
	if len(drops) != 1 || !errors.As(drops[0], &ce) {
		t.Fatalf("drops %v, want one *ConnectionError, for the silent connection", drops)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(lastIDs, []string{"", "1"}) {
		t.Fatalf("Last-Event-ID of each connection: %q", lastIDs)
	}
}
