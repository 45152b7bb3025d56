package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// stallingWriter is a ResponseWriter whose first write (the subscription's retry line)
// goes through and whose later ones wait until its request ends, as writes to a client
// that stopped reading do once the socket's buffers are full.
type stallingWriter struct {
	header http.Header
	done   <-chan struct{}
	writes int
}

func (w *stallingWriter) Header() http.Header { return w.header }
func (w *stallingWriter) WriteHeader(int)     {}
func (w *stallingWriter) Flush()              {}

func (w *stallingWriter) Write(b []byte) (int, error) {
	if w.writes++; w.writes == 1 {
		return len(b), nil
	}
	<-w.done
	return 0, errors.New("the client stopped reading")
}

// TestStalledSubscriberHoldsNoDecodedData: a subscription whose client stopped reading
// waits for room in its queue holding nothing of the memory budget. It decoded the
// next event into bytes reserved of the budget and then waited for room to send it,
// holding them, so that subscribers that stopped reading held an event's decoded
// bound each, for as long as they stayed connected, and could keep reads from the
// budget.
func TestStalledSubscriberHoldsNoDecodedData(t *testing.T) {
	e := newEnv(t, Options{SubscriberBuffer: 1})
	objects := repeated(2000, func(int) any { return map[string]any{} })
	for range 4 {
		e.append("s", nil, ev("E", map[string]any{"l": objects})).must(t, http.StatusCreated)
	}
	waits := make(chan int64, 1)
	e.srv.hooks.queueWaits = func() {
		select {
		case waits <- e.srv.memory.Held():
		default:
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/subscribe?stream=s", nil)
	req.Host = "localhost"
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.srv.ServeHTTP(&stallingWriter{header: http.Header{}, done: ctx.Done()}, req)
	}()
	select {
	case held := <-waits:
		if held != 0 {
			t.Errorf("the subscription waits for room in its queue holding %d bytes of the memory budget, want 0", held)
		}
	case <-time.After(time.Minute):
		t.Fatal("the subscription never waited for room in its queue")
	}
	cancel()
	<-served
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes of the budget held after the subscription ended", h)
	}
}
