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
// minute for each cause (the error after the client's address, without its numbers),
// with how many of that cause were left out. Every connection to the TLS port that does
// not finish a handshake (a port scan, a load balancer's TCP check, plain HTTP) writes
// one, so without a bound anyone who can connect fills the log; a bound for them all
// would let a load balancer's probes (EOF) hide clients refusing the certificate.
type httpErrorLog struct {
	log *slog.Logger
	now func() time.Time // nil: time.Now

	mu        sync.Mutex
	handshake logevery.Lines
}

// handshakePrefix starts net/http's line for a failed TLS handshake, followed by
// "<client address>: <error>".
const handshakePrefix = "http: TLS handshake error from "

// Write implements io.Writer for log.New: p is one line.
func (l *httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	rest, ok := strings.CutPrefix(msg, handshakePrefix)
	if !ok {
		l.log.Warn(msg)
		return len(p), nil
	}
	// The address has no ": " (an IPv6 one is in brackets, its port after "]:").
	if _, cause, found := strings.Cut(rest, ": "); found {
		rest = cause
	}
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	l.mu.Lock()
	suppressed, ok := l.handshake.Log(logevery.Key(rest), now())
	l.mu.Unlock()
	if ok {
		l.log.Warn(msg, "suppressed", suppressed)
	}
	return len(p), nil
}
