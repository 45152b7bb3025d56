package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeNode stands for pmd serve in scripts/cluster.sh: it reports its start and each
// SIGTERM or SIGINT to $FAKE_REPORTS, and as pmd does takes the first signal for a
// clean shutdown (which here never ends) and exits at the second. Its read times out
// every second: bash runs a trap only between commands or when a blocked read is
// interrupted, and a signal that arrives inside read just before it blocks (a node
// preempted there on a loaded machine) would otherwise wait for a line that never comes.
const fakeNode = `#!/usr/bin/env bash
n=0
got() { n=$((n+1)); echo "$1 $n $$" >"$FAKE_REPORTS"; if [ "$n" -ge 2 ]; then exit 1; fi; }
trap 'got TERM' TERM
trap 'got INT' INT
echo "start 0 $$" >"$FAKE_REPORTS"
exec 3<>"$FAKE_HOLD"
while :; do read -r -t 1 -u 3 _ || true; done
`

// TestClusterScriptWaitsForItsNodes: make cluster's script never exits before its
// nodes. The first Ctrl-C (SIGINT to the script's process group, as the terminal sends
// it; or a SIGTERM, or the terminal's SIGHUP) sends each node one SIGTERM, which starts
// a clean shutdown that can take up to --shutdown-grace; a second one sends each a
// second SIGTERM, pmd's "exit at once", and the script exits once all three have. A
// node never gets the signal sent to the script.
func TestClusterScriptWaitsForItsNodes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run scripts/cluster.sh:", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sig  syscall.Signal
		exit int
	}{
		{syscall.SIGINT, 130},
		{syscall.SIGTERM, 143},
		{syscall.SIGHUP, 129},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			runClusterScript(t, bash, script, tt.sig, tt.exit)
		})
	}
}

// runClusterScript runs script with three fake nodes, sends its process group sig
// twice, and checks it exits with status exit only after its nodes did.
func runClusterScript(t *testing.T, bash, script string, sig syscall.Signal, exitStatus int) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-pmd")
	if err := os.WriteFile(fake, []byte(fakeNode), 0o700); err != nil {
		t.Fatal(err)
	}
	fifo, hold := filepath.Join(dir, "reports"), filepath.Join(dir, "hold")
	for _, p := range []string{fifo, hold} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Open read-write: the nodes' writes never block on a missing reader, and the
	// reports never end while the test reads them.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reports := make(chan string, 32)
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			reports <- s.Text()
		}
	}()

	cmd := exec.Command(bash, script)
	cmd.Env = append(os.Environ(), "PMD="+fake, "CLUSTER_DATA="+filepath.Join(dir, "data"), "CONFIG="+filepath.Join(dir, "none.yaml"),
		"FAKE_REPORTS="+fifo, "FAKE_HOLD="+hold)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a process group of its own, no terminal
	// stderr is read for failure messages while the script may still write it.
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	group := cmd.Process.Pid
	lines := make(chan string, 32)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	exited := make(chan error, 1)
	var nodes []int
	t.Cleanup(func() {
		// Whatever the test found, leave nothing running.
		syscall.Kill(-group, syscall.SIGKILL)
		for _, p := range nodes {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})

	deadline := time.After(time.Minute)
	report := func(want string) (pid int) {
		t.Helper()
		select {
		case l := <-reports:
			var what string
			var n int
			if _, err := fmt.Sscan(l, &what, &n, &pid); err != nil || what+" "+strconv.Itoa(n) != want {
				t.Fatalf("a node reported %q, want %q (stderr: %s)", l, want+" PID", stderr.String())
			}
			return pid
		case <-deadline:
			t.Fatalf("no %q from a node in a minute (stderr: %s)", want, stderr.String())
		}
		return 0
	}
	for range 3 {
		nodes = append(nodes, report("start 0"))
	}
	// The script has started all three once it says how to stop them.
	for l := range lines {
		if strings.HasPrefix(l, "Ctrl-C stops") {
			break
		}
	}
	go func() {
		for range lines {
		}
		exited <- cmd.Wait()
	}()

	// The first signal: each node gets one SIGTERM and starts its clean shutdown.
	if err := syscall.Kill(-group, sig); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		report("TERM 1")
	}
	// The second: the script has each node exit at once, and exits when they have.
	if err := syscall.Kill(-group, sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitStatus {
			t.Errorf("the script exited with %v, want exit status %d (stderr: %s)", err, exitStatus, stderr.String())
		}
	case <-deadline:
		t.Fatalf("the script has not exited a minute after the second signal (stderr: %s)", stderr.String())
	}
	// The script waited for its nodes, so none is left, not even a zombie.
	for _, p := range nodes {
		if err := syscall.Kill(p, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("node %d outlived the script (kill -0: %v; stderr: %s)", p, err, stderr.String())
		}
	}
	for range 3 {
		report("TERM 2")
	}
}
