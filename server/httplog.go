package server

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pmd-dev/pmd/internal/logevery"
)

// httpErrorLog is where http.Server writes its error lines (its ErrorLog): each becomes
// a WARN of Options.Logger, but those of failed TLS handshakes are logged at most once a
// minute, with how many were left out. Every connection to the TLS port that does not
// finish a handshake (a port scan, a load balancer's TCP check, plain HTTP) writes one,
// so without a bound anyone who can connect fills the log.
type httpErrorLog struct {
	log *slog.Logger
	now func() time.Time // nil: time.Now

	mu        sync.Mutex
	handshake logevery.Line
}

// Write implements io.Writer for log.New: p is one line.
func (l *httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	if !strings.HasPrefix(msg, "http: TLS handshake error") {
		l.log.Warn(msg)
		return len(p), nil
	}
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	l.mu.Lock()
	suppressed, ok := l.handshake.Log(now())
	l.mu.Unlock()
	if ok {
		l.log.Warn(msg, "suppressed", suppressed)
	}
	return len(p), nil
}
