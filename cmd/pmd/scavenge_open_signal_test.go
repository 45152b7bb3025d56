package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmd-dev/pmd/internal/engine"
)

// TestScavengeInterruptedWhileOpening: an interrupt while pmd scavenge DIR opens the
// store, which can take long (indexing a long log, an upgrade) and cannot stop midway,
// exits at once, saying so, instead of waiting for the open to end. The open is held
// reading DIR/FORMAT, made a named pipe: once the test's open of the pipe for writing
// returns, pmd is inside the store's open.
func TestScavengeInterruptedWhileOpening(t *testing.T) {
	bin := pmdBinary(t)
	dir := scavengeStore(t, 0)
	format := filepath.Join(dir, engine.FormatFile)
	content, err := os.ReadFile(format)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(format); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(format, 0o640); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	limit, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(limit, bin, "scavenge", dir, "--rate", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	w, err := os.OpenFile(format, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		// Still in the open: let it finish, and the scavenge it then starts sees the
		// interrupt.
		w.Write(content)
		w.Close()
		err = <-exited
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFailed || !strings.Contains(stderr.String(), "interrupted while opening") {
		t.Fatalf("pmd scavenge exited with %v, want code %d, having said it was interrupted while opening\nstdout: %s\nstderr: %s",
			err, exitFailed, stdout.String(), stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing: nothing was scavenged", stdout.String())
	}
}
