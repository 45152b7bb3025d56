package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pmd-dev/pmd"
)

// subscribe streams events as Server-Sent Events: catch-up from "from" (or from the
// event after Last-Event-ID), then live. The SSE id of an event is its position when
// following the global log and its version when following one stream, so resuming
// from Last-Event-ID is exact.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := pmd.SubscribeOptions{Stream: q.Get("stream"), Types: splitTypes(q.Get("types"))}
	if opts.Stream != "" && len(opts.Types) > 0 {
		return errBadRequest("give stream or types, not both: types filter only the global log")
	}
	if opts.Stream != "" && opts.Stream != pmd.All {
		if err := checkName("stream", opts.Stream); err != nil {
			return err
		}
	}
	for i, t := range opts.Types {
		if err := checkName(fmt.Sprintf("types[%d]", i), t); err != nil {
			return err
		}
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errBadRequest("from must be a non-negative integer, got %q", v)
		}
		opts.From = n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == pmd.End {
			return errBadRequest("Last-Event-ID must be the id of an event sent before, got %q", v)
		}
		opts.From = n + 1
	}
	byStream := opts.Stream != "" && opts.Stream != pmd.All

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Tell EventSource how soon to reconnect, and open the stream right away so the
	// client knows it is subscribed before the first event.
	if err := s.sseWrite(w, rc, []byte("retry: 1000\n\n")); err != nil {
		return nil
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.metrics.subscriptions.Inc()
	defer s.metrics.subscriptions.Dec()

	// The subscription runs in its own goroutine so that heartbeats can be sent while it
	// waits for events; only this goroutine writes to the client.
	type item struct {
		ev  pmd.Event
		err error
	}
	items := make(chan item, 64)
	go func() {
		defer close(items)
		for ev, err := range s.store.Subscribe(ctx, opts) {
			select {
			case items <- item{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	heartbeat := time.NewTicker(s.opts.Heartbeat)
	defer heartbeat.Stop()
	var buf bytes.Buffer
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return nil
			}
			if it.err != nil {
				s.log.Warn("subscription ended", "stream", opts.Stream, "err", it.err)
				// The stream ends; the client reconnects with Last-Event-ID.
				return nil
			}
			buf.Reset()
			id := it.ev.Position
			if byStream {
				id = it.ev.Version
			}
			fmt.Fprintf(&buf, "id: %d\ndata: ", id)
			data, err := json.Marshal(toJSON(it.ev, byStream))
			if err != nil {
				return fmt.Errorf("server: encode event %s: %w", it.ev.ID, err)
			}
			buf.Write(data)
			buf.WriteString("\n\n")
			if err := s.sseWrite(w, rc, buf.Bytes()); err != nil {
				return nil // the client is gone or too slow
			}
			s.metrics.read(1)
		case <-heartbeat.C:
			if err := s.sseWrite(w, rc, []byte(": heartbeat\n\n")); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// sseWrite writes and flushes one chunk under a write deadline, so that a client that
// stops reading is cut off rather than holding a goroutine and a connection forever.
func (s *Server) sseWrite(w http.ResponseWriter, rc *http.ResponseController, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.RequestTimeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}
