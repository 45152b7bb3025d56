package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// racingWriter is a response writer whose next write deadline is the stop's moment: the
// server begins to stop, and the stop's watcher cuts the deadline, between the handler's
// check and the deadline it then sets, which takes effect last.
type racingWriter struct {
	*httptest.ResponseRecorder
	raced     func()
	deadlines []time.Time
}

func (w *racingWriter) SetWriteDeadline(d time.Time) error {
	if raced := w.raced; raced != nil {
		w.raced = nil
		raced()
	}
	w.deadlines = append(w.deadlines, d)
	return nil
}

// TestDeadlineRacingTheStop: a stop that comes between deadline's check and the
// RequestTimeout it gives the write does not leave that deadline in place: deadline puts
// the stop's back and says the server is stopping. Left in place, net/http would write the
// response's end to a client that stopped reading under RequestTimeout, holding Shutdown.
func TestDeadlineRacingTheStop(t *testing.T) {
	s := &Server{opts: Options{RequestTimeout: time.Hour}, stopping: make(chan struct{})}
	w := &racingWriter{ResponseRecorder: httptest.NewRecorder()}
	l := &longResponse{s: s, w: w, rc: http.NewResponseController(w)}
	l.sending.Store(true)
	w.raced = func() {
		s.stop()
		l.stopDeadline() // what whileServing's watcher does at the stop
	}
	err := l.deadline()
	var stopping *shutdownError
	if !errors.As(err, &stopping) {
		t.Fatalf("deadline() = %v, want a shutdownError", err)
	}
	if len(w.deadlines) == 0 {
		t.Fatal("no write deadline set")
	}
	if last := w.deadlines[len(w.deadlines)-1]; !last.Equal(l.final) || time.Until(last) > stopWrite {
		t.Fatalf("last write deadline in %v, want the stop's (%v)", time.Until(last).Round(time.Second), stopWrite)
	}
}
