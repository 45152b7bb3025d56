package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestShutdownRefusalLoggedAsWarning: a 503 answered because the server is shutting
// down is a refusal the daemon means to make, as at the memory budget: logged as a
// warning naming the request, not as a failed request. Before the shutdown, a closed
// store is still an error.
func TestShutdownRefusalLoggedAsWarning(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closed := func() {
		e.srv.writeError(&statusRecorder{ResponseWriter: httptest.NewRecorder()}, httptest.NewRequest("GET", "/v1/stats", nil),
			fmt.Errorf("the store cannot be read: %w", pmd.ErrClosed))
	}
	closed()
	if l := logs.String(); !strings.Contains(l, "level=ERROR") {
		t.Fatalf("a closed store while serving logged as %q, want an error", l)
	}

	logs.Reset()
	e.srv.stop()
	rec := e.serve(httptest.NewRequest("GET", "/v1/streams/s", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Fatalf("a read while shutting down: %d %s, want 503", rec.Code, rec.Body)
	}
	// The store closed under a request still running when the grace ran out.
	closed()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines:\n%s\nwant one for each refusal", logs.String())
	}
	for i, path := range []string{"/v1/streams/s", "/v1/stats"} {
		if l := lines[i]; !strings.Contains(l, "level=WARN") || !strings.Contains(l, "shutting down") || !strings.Contains(l, "path="+path) {
			t.Errorf("log line %q, want a warning that the server is shutting down, naming %s", l, path)
		}
	}
}

// TestUnavailableWhileStoppingNotShutdown: once the server is stopping, a 503 the
// shutdown did not cause (a cluster without a leader, a request out of time) is still
// a failed request, not logged as the shutdown's refusal.
func TestUnavailableWhileStoppingNotShutdown(t *testing.T) {
	// One server for both: a timeout does not hold back the line of another cause.
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e.srv.stop()
	for _, err := range []error{
		fmt.Errorf("no leader: %w", pmd.ErrUnavailable),
		fmt.Errorf("reading: %w", context.DeadlineExceeded),
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		e.srv.writeError(&statusRecorder{ResponseWriter: rec}, httptest.NewRequest("GET", "/v1/stats", nil), err)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%v answered %d, want 503", err, rec.Code)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || strings.Contains(l, "shutting down") {
			t.Errorf("%v while stopping logged as %q, want a failed request at ERROR", err, l)
		}
	}
}

// TestUnavailableLoggedPerCause: requests failing as unavailable are held back a
// minute per cause, not all behind one: a slow read that timed out hid the first line
// of a full disk or of a cluster without a leader for a minute, and the count of those
// left out mixed the causes. Positions in the message do not make another cause.
func TestUnavailableLoggedPerCause(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	diskFull := func(pos int) error {
		return fmt.Errorf("log: write positions %d-%d: %w: write tail: no space left on device", pos, pos, pmd.ErrUnavailable)
	}
	for i, step := range []struct {
		err  error
		want bool // logged
	}{
		{fmt.Errorf("read: %w", context.DeadlineExceeded), true},
		{diskFull(7), true},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), false},
		{diskFull(8), false},
		{fmt.Errorf("no leader: %w", pmd.ErrUnavailable), true},
	} {
		logs.Reset()
		rec := httptest.NewRecorder()
		e.srv.writeError(&statusRecorder{ResponseWriter: rec}, httptest.NewRequest("POST", "/v1/streams/s", nil), step.err)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%v answered %d, want 503", step.err, rec.Code)
		}
		if logged := strings.Contains(logs.String(), `msg="request failed"`); logged != step.want {
			t.Errorf("step %d: %v logged: %t, want %t:\n%s", i, step.err, logged, step.want, logs.String())
		}
	}
}
