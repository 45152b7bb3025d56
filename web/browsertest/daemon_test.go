package browsertest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRunDaemon: runDaemon finds the serving line after whatever the daemon logs before
// it and reads all it logs, so that the daemon never blocks on a log line and stops when
// asked; a daemon that exits or never serves is reported once, at once. A line longer
// than bufio.Scanner's 64 KiB stopped the reading: the serving line after it went
// unseen, and a daemon that logged on past what the pipe holds never stopped. A daemon
// that exited before serving left the clean-up waiting for an exit it had been told of
// already. The daemon is this test binary (TestFakeDaemon).
func TestRunDaemon(t *testing.T) {
	for _, tc := range []struct {
		mode string
		wait time.Duration
		// fails holds what the one error reported says; nil when the daemon serves.
		fails []string
	}{
		{mode: "many lines before serving", wait: 30 * time.Second},
		{mode: "a long line before serving", wait: 30 * time.Second},
		{mode: "a long line after serving", wait: 30 * time.Second},
		{mode: "exits before serving", wait: 30 * time.Second, fails: []string{"pmd exited before serving: exit status 3", `"msg":"starting"`}},
		// Where it is stuck: the goroutines SIGQUIT makes a Go program print.
		{mode: "never serves", wait: 2 * time.Second, fails: []string{"pmd did not serve within 2s", "goroutine "}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFakeDaemon$")
			cmd.Env = append(os.Environ(), "BROWSERTEST_FAKE_DAEMON="+tc.mode)
			rec := &recorder{TB: t}
			var d *daemon
			// Registered first, so it runs after runDaemon's clean-up has stopped the daemon.
			t.Cleanup(func() {
				errs := rec.reported()
				if tc.fails == nil {
					if len(errs) > 0 {
						t.Errorf("runDaemon reported %q", errs)
					} else if !strings.HasSuffix(d.logs.String(), "{\"msg\":\"stopped\"}\n") {
						t.Errorf("the log read does not end with the daemon's last line: ...%s", tail(d.logs.String()))
					}
					return
				}
				if len(errs) != 1 {
					t.Fatalf("runDaemon reported %d errors, want 1: %q", len(errs), errs)
				}
				for _, want := range tc.fails {
					if !strings.Contains(errs[0], want) {
						t.Errorf("runDaemon reported %q, want it to say %q", tail(errs[0]), want)
					}
				}
			})
			done := make(chan struct{})
			go func() { // runDaemon's Fatal ends this goroutine, not the test's
				defer close(done)
				d = runDaemon(rec, cmd, tc.wait)
			}()
			<-done
			if tc.fails == nil && d != nil && d.base != "http://127.0.0.1:1" {
				t.Errorf("serving at %q, want the URL of the serving line", d.base)
			}
		})
	}
}

// recorder is a test that records the errors reported to it rather than failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

func (r *recorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	runtime.Goexit()
}

func (r *recorder) Fatal(a ...any) { r.Fatalf("%s", fmt.Sprint(a...)) }

func (r *recorder) reported() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

// TestStartDaemonIgnoresPmdEnvironment: pmd serve reads PMD_AUTH, PMD_JOIN and more from
// its environment; one a developer had exported reached every browser test's daemon,
// which then refused to start, or ran with other settings than the test's.
func TestStartDaemonIgnoresPmdEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd; skipped in -short")
	}
	t.Setenv("PMD_JOIN", "127.0.0.1:1")
	t.Setenv("PMD_AUTH", filepath.Join(t.TempDir(), "missing-tokens"))
	d := startDaemon(t)
	d.call(t, "GET", "/v1/streams", "", http.StatusOK)
}

func tail(s string) string { return s[max(0, len(s)-300):] }

// TestFakeDaemon is the daemon TestRunDaemon starts: it logs as the mode in
// $BROWSERTEST_FAKE_DAEMON says, and on SIGTERM logs a last line and exits.
func TestFakeDaemon(t *testing.T) {
	mode := os.Getenv("BROWSERTEST_FAKE_DAEMON")
	if mode == "" {
		t.Skip("the daemon that TestRunDaemon starts")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	log := func(line string) {
		if _, err := os.Stderr.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	serving := func() { log(`{"msg":"pmd serving","url":"http://127.0.0.1:1"}`) }
	// 1 MiB of lines, many times what a pipe holds.
	lines := func() {
		for i := range 10000 {
			log(fmt.Sprintf(`{"msg":"line","n":%d,"pad":"%s"}`, i, strings.Repeat("x", 70)))
		}
	}
	long := func() { log(`{"msg":"long","data":"` + strings.Repeat("x", 100<<10) + `"}`) }
	switch mode {
	case "many lines before serving":
		lines()
		serving()
	case "a long line before serving":
		long()
		serving()
	case "a long line after serving":
		serving()
		long()
		lines()
	case "exits before serving":
		log(`{"msg":"starting"}`)
		os.Exit(3) // as pmd does when it cannot listen
	case "never serves":
		log(`{"msg":"starting"}`)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	<-stop
	log(`{"msg":"stopped"}`)
}
