package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestHTTPErrorLog: net/http's error lines are logged at WARN, but those of failed TLS
// handshakes at most once a minute for each cause (the error after the client's
// address), with how many were left out: every connection that does not finish one (a
// port scan, a load balancer's TCP check, plain HTTP to the TLS port) logged a line,
// and the probes' EOFs must not hide clients refusing the certificate.
func TestHTTPErrorLog(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := &httpErrorLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	for _, step := range []struct {
		after time.Duration
		line  string
		want  string // "" for nothing logged
	}{
		{0, "http: TLS handshake error from 10.0.0.1:5000: EOF\n", `level=WARN msg="http: TLS handshake error from 10.0.0.1:5000: EOF" suppressed=0`},
		{time.Second, "http: TLS handshake error from 10.0.0.2:5000: EOF\n", ""},
		{time.Second, "http: panic serving 10.0.0.3:5000: boom\n", `level=WARN msg="http: panic serving 10.0.0.3:5000: boom"`},
		// Another cause is not held back behind a load balancer's EOFs.
		{time.Second, "http: TLS handshake error from 10.0.0.4:5000: client sent an HTTP request to an HTTPS server\n",
			`msg="http: TLS handshake error from 10.0.0.4:5000: client sent an HTTP request to an HTTPS server" suppressed=0`},
		{time.Second, "http: TLS handshake error from 10.0.0.6:5001: remote error: tls: bad certificate\n",
			`msg="http: TLS handshake error from 10.0.0.6:5001: remote error: tls: bad certificate" suppressed=0`},
		{time.Second, "http: TLS handshake error from 10.0.0.7:5002: remote error: tls: bad certificate\n", ""},
		{time.Second, "http: TLS handshake error from [::1]:5003: EOF\n", ""},
		{time.Minute, "http: TLS handshake error from 10.0.0.5:5000: EOF\n", `msg="http: TLS handshake error from 10.0.0.5:5000: EOF" suppressed=2`},
		{time.Second, "http: TLS handshake error from 10.0.0.6:5001: remote error: tls: bad certificate\n",
			`msg="http: TLS handshake error from 10.0.0.6:5001: remote error: tls: bad certificate" suppressed=1`},
	} {
		now = now.Add(step.after)
		buf.Reset()
		if n, err := l.Write([]byte(step.line)); n != len(step.line) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", step.line, n, err)
		}
		got := strings.TrimSpace(buf.String())
		if step.want == "" && got != "" || step.want != "" && !strings.Contains(got, step.want) {
			t.Errorf("after %q logged %q, want %q", strings.TrimSpace(step.line), got, step.want)
		}
	}
}
