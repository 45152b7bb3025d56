package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestScavengeInterrupted: SIGINT or SIGTERM stops pmd scavenge DIR at the segment under
// way, which stays as it was; it prints what it did before, and exits non-zero. The
// scavenge runs at 1 byte a second, so it is still on its first segment when the
// signal comes, sent once it said it started (no sleep).
func TestScavengeInterrupted(t *testing.T) {
	bin := pmdBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := scavengeStore(t, 0)
			ctx := context.Background()

			// A scavenge that never says it started, or ignores the signal, is killed.
			limit, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(limit, bin, "scavenge", dir, "--rate", "1")
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stderr)
			var rest strings.Builder
			for lines.Scan() {
				if strings.HasPrefix(lines.Text(), "scavenging ") {
					break
				}
				rest.WriteString(lines.Text() + "\n")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatalf("signal: %v (stderr: %s)", err, rest.String())
			}
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailed {
				t.Fatalf("pmd scavenge exited with %v, want code %d\nstdout: %s\nstderr: %s", err, exitFailed, stdout.String(), rest.String())
			}
			if out := stdout.String(); !strings.Contains(out, "0 segment(s) read") || !strings.Contains(out, "0 bytes freed") {
				t.Errorf("stdout %q, want the summary of what was done: nothing", out)
			}
			if !strings.Contains(rest.String(), "interrupted") {
				t.Errorf("stderr %q does not say it was interrupted", rest.String())
			}
			// The store is whole, and the next scavenge does the work.
			if r, err := engine.Verify(ctx, dir, nil); err != nil || !r.OK() {
				t.Fatalf("verify after the interrupted scavenge: %+v, %v", r, err)
			}
			out, err := exec.Command(bin, "scavenge", dir, "--rate", "0").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "20 events and links removed") {
				t.Fatalf("scavenge after the interrupted one: %v\n%s", err, out)
			}
		})
	}
}
