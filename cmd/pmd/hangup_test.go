package main

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeSIGHUPNeverEndsTheDaemon sends a real SIGHUP to a real daemon: without
// --auth or --tls-cert there is nothing to reload, and the daemon says so and serves on
// (Go's default action for an uncaught SIGHUP is to exit at once); with --auth it reloads
// the tokens.
func TestServeSIGHUPNeverEndsTheDaemon(t *testing.T) {
	bin := pmdBinary(t)
	for _, tt := range []struct {
		name string
		args func(t *testing.T) []string
		want string // the log record of the SIGHUP
	}{
		{"nothing to reload", func(*testing.T) []string { return nil }, "SIGHUP: nothing to reload; the config file is read only at start"},
		{"--auth", func(t *testing.T) []string {
			return []string{"--auth", writeTokens(t, "tokens:\n  - {name: a, sha256: "+sha256Hex("secret")+", scopes: [read]}\n")}
		}, "tokens reloaded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, bin, append([]string{"--data", t.TempDir()}, tt.args(t)...)...)
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			d.waitLog(t, tt.want)
			resp, err := http.Get(d.base + "/healthz")
			if err != nil {
				t.Fatalf("the daemon does not serve after SIGHUP: %v", err)
			}
			resp.Body.Close()
			if err := d.stop(t, syscall.SIGTERM); err != nil {
				t.Fatalf("pmd exited with %v\n%s", err, d.logs)
			}
		})
	}
}

// TestServeSIGHUPWhileShuttingDown: a SIGHUP while the daemon waits for a request in
// flight to finish its graceful shutdown does not end it: the request is answered and
// the daemon exits 0, its store closed.
func TestServeSIGHUPWhileShuttingDown(t *testing.T) {
	bin := pmdBinary(t)
	tokens := writeTokens(t, "tokens:\n  - {name: a, sha256: "+sha256Hex("secret")+", scopes: [write]}\n")
	d := startDaemon(t, bin, "--data", t.TempDir(), "--auth", tokens)

	// A POST whose body is held back: the server's handler is in flight once it asks
	// for the body (100 Continue), and stays so until the body is written.
	body, bodyW := io.Pipe()
	inFlight := make(chan struct{})
	req, err := http.NewRequest("POST", d.base+"/v1/streams/s", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { close(inFlight) },
	}))
	answered := make(chan int, 1)
	go func() {
		tr := &http.Transport{ExpectContinueTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not reach its handler")
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "shutting down")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "SIGHUP while shutting down")
	if _, err := io.Copy(bodyW, strings.NewReader(`{"events":[{"type":"E"}]}`)); err != nil {
		t.Fatal(err)
	}
	bodyW.Close()
	got := <-answered
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("pmd exited with %v\n%s", err, d.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pmd did not exit")
	}
	if got != http.StatusCreated {
		t.Errorf("the request in flight: status %d, want 201\n%s", got, d.logs)
	}
	if !strings.Contains(d.logs.String(), `"msg":"pmd stopped"`) {
		t.Fatalf("pmd did not stop gracefully\n%s", d.logs)
	}
}
