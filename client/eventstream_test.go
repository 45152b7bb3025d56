package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/client"
)

// eventJSON is an event's JSON of exactly size bytes (at least 100), its data padded.
func eventJSON(size int) string {
	const head, tail = `{"id":"0190c1d2-0000-7000-8000-000000000001","type":"Big","position":1,"data":{"s":"`, `"}}`
	return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
}

// serveOnce answers every subscription with body (Content-Type contentType, none if
// empty), then holds the connection open; it counts the requests.
func serveOnce(t *testing.T, contentType, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		fmt.Fprint(w, body)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(ts.Close)
	return ts, &requests
}

// first is the first thing a subscription yields; a drop fails the test.
func first(t *testing.T, c *client.Client) (client.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for e, err := range c.Subscribe(ctx, client.SubscribeOptions{Dropped: func(err error) {
		t.Errorf("dropped, and the subscription reconnects: %v", err)
		cancel()
	}}) {
		return e, err
	}
	t.Fatalf("the subscription ended without yielding: %v", ctx.Err())
	return client.Event{}, nil
}

// TestSubscribeEventSizeLimit: a line or an event's data longer than WithMaxEventSize
// ends the subscription with an error naming the option, without a reconnect; one of
// that size is taken, however many reads of the connection its line takes. A line was
// read whatever its length: an answer streaming without a newline (a wrong address, a
// proxy's) grew the subscription's memory until the program ran out of it; a line
// "data:" without the space took data a byte over the limit.
func TestSubscribeEventSizeLimit(t *testing.T) {
	big := eventJSON(200 << 10) // over the client's 64 KiB read buffer
	small := eventJSON(1000)
	lines := `{"id":"0190c1d2-0000-7000-8000-000000000001",` + "\ndata: " + `"type":"Big","position":1}`
	for _, tt := range []struct {
		name, body string
		max        int
		ok         bool
	}{
		{"a long line of the limit's size", "id: 1\r\ndata: " + big + "\r\n\r\n", len(big), true},
		{"a long line over the limit", "id: 1\r\ndata: " + big + "\r\n\r\n", len(big) - 1, false},
		{"a line that does not end", "data: " + strings.Repeat("x", 1<<20), 256 << 10, false},
		{"a comment over the limit", ":" + strings.Repeat("x", 300<<10) + "\n\n", 256 << 10, false},
		{"data lines of the limit's size", "id: 1\ndata: " + lines + "\n\n", len(lines) - len("data: "), true},
		{"data lines over the limit", "id: 1\ndata: " + lines + "\n\n", len(lines) - len("data: ") - 1, false},
		// "data:" without the space: the line is a byte shorter for the same data.
		{"a line without the space of the limit's size", "id: 1\ndata:" + small + "\n\n", len(small), true},
		{"a line without the space over the limit", "id: 1\ndata:" + small + "\n\n", len(small) - 1, false},
		{"a long line without the space of the limit's size", "id: 1\r\ndata:" + big + "\r\n\r\n", len(big), true},
		{"a long line without the space over the limit", "id: 1\r\ndata:" + big + "\r\n\r\n", len(big) - 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts, requests := serveOnce(t, "text/event-stream", tt.body)
			c := newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond), client.WithMaxEventSize(tt.max))
			e, err := first(t, c)
			switch {
			case tt.ok && err != nil:
				t.Fatal(err)
			case tt.ok && (e.Type != "Big" || e.Position != 1):
				t.Fatalf("got %s at %d, want Big at 1", e.Type, e.Position)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), "WithMaxEventSize") || !strings.Contains(err.Error(), fmt.Sprint(tt.max))):
				t.Fatalf("got %v, want an error naming WithMaxEventSize and %d", err, tt.max)
			}
			if n := requests.Load(); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
	if _, err := client.New("127.0.0.1:7070", client.WithMaxEventSize(0)); err == nil || !strings.Contains(err.Error(), "event size") {
		t.Fatalf("WithMaxEventSize(0): got %v, want an error naming the event size", err)
	}
}

// TestSubscribeRefusesWhatIsNotAnEventStream: a 200 answer that is not an event stream
// (a proxy's page, another server at the address) ends the subscription with an *Error
// naming its Content-Type, without a reconnect. It was read as one: its lines were none
// the client knew, and at its end the subscription reconnected to it forever.
func TestSubscribeRefusesWhatIsNotAnEventStream(t *testing.T) {
	for _, tt := range []struct{ contentType, want string }{
		{"text/html; charset=utf-8", "text/html; charset=utf-8"},
		{"application/json", "application/json"},
		{"", "no Content-Type"},
	} {
		ts, requests := serveOnce(t, tt.contentType, "<html><body>Welcome</body></html>\n\n")
		_, err := first(t, newClient(t, ts.URL, client.WithReconnectDelay(time.Millisecond)))
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusOK || !strings.Contains(ae.Message, tt.want) || !strings.Contains(ae.Message, "text/event-stream") {
			t.Errorf("Content-Type %q: got %v, want an *Error of status 200 naming %q and text/event-stream", tt.contentType, err, tt.want)
		}
		if n := requests.Load(); n != 1 {
			t.Errorf("Content-Type %q: %d requests, want 1", tt.contentType, n)
		}
	}
	// The type's parameters do not matter.
	ts, _ := serveOnce(t, "text/event-stream; charset=utf-8", "id: 1\ndata: "+eventJSON(100)+"\n\n")
	if _, err := first(t, newClient(t, ts.URL)); err != nil {
		t.Fatal(err)
	}
}
