package client_test

import (
	"context"
	"errors"
	"io"
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

// TestSubscribeThroughAFollowerWhoseLeaderIsCut: a subscription read through a
// follower (WithLeaderReads) whose leader's stream breaks off inside an event (the
// leader killed) is told so: Dropped gets the follower's unavailable error event,
// naming the leader's stream, rather than an unexpected EOF that a cut of the client's
// own connection also gives; the event cut short is not yielded, and the subscription
// resumes after the last event it got whole.
func TestSubscribeThroughAFollowerWhoseLeaderIsCut(t *testing.T) {
	const event = `{"id":"0190c1d2-0000-7000-8000-00000000000%d","type":"A","position":%d}`
	var mu sync.Mutex
	var lastIDs []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		first := len(lastIDs) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		if first {
			io.WriteString(w, "retry: 1000\n\nid: 7\ndata: "+strings.ReplaceAll(event, "%d", "7")+"\n\nid: 8\ndata: {\"id\":\"0190c1d2-00")
			rc.Flush()
			panic(http.ErrAbortHandler) // the leader's connection breaks inside event 8
		}
		io.WriteString(w, "retry: 1000\n\nid: 8\ndata: "+strings.ReplaceAll(event, "%d", "8")+"\n\n")
		rc.Flush()
		<-r.Context().Done()
	}))
	defer leader.Close()
	d := startDaemon(t, server.Options{Node: relay{leader: strings.TrimPrefix(leader.URL, "http://")}}, nil)
	c := newClient(t, d.url, client.WithLeaderReads(), client.WithReconnectDelay(time.Millisecond))
	var drops []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := collect(t, c.Subscribe(ctx, client.SubscribeOptions{From: 7, Dropped: func(err error) { drops = append(drops, err) }}), 2)
	if !slices.Equal(positions(got), []uint64{7, 8}) {
		t.Fatalf("got %+v", got)
	}
	var api *client.Error
	if len(drops) != 1 || !errors.Is(drops[0], pmd.ErrUnavailable) || !errors.As(drops[0], &api) || !strings.Contains(api.Message, "the leader's stream") {
		t.Fatalf("drops: %v; want one, unavailable, naming the leader's stream", drops)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(lastIDs, []string{"", "7"}) {
		t.Fatalf("Last-Event-ID of each connection to the leader: %q", lastIDs)
	}
}
