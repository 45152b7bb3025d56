package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUnavailableLoggedOnceAMinute: while writes cannot be served (a full disk, a
// cluster without a leader) every write fails the same way; the first failure is logged
// at ERROR and the next ones of the minute are counted, not logged one each: clients
// retrying flooded the log with one line per request. Other failures are still logged.
func TestUnavailableLoggedOnceAMinute(t *testing.T) {
	var none atomic.Bool
	none.Store(true)
	var logged syncBuffer
	e := newEnv(t, Options{Node: leaderless{follower: follower{"127.0.0.1:1"}, none: &none, waits: make(chan time.Duration)},
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	for range 5 {
		e.append("Order$1", nil, ev("E", nil)).mustError(t, http.StatusServiceUnavailable, "unavailable")
	}
	if n := strings.Count(logged.String(), `msg="request failed"`); n != 1 {
		t.Fatalf("%d lines of failed requests for 5 writes refused the same way, want 1:\n%s", n, logged.String())
	}
}
