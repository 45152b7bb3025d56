package pmd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pipedTarget is a Makefile target whose recipe pipes the output of $(GO) test through
// grep (make bench-cluster filters Raft's log lines out): without pipefail, such a
// recipe's status is the filter's, not the tests'. prereqs are the targets its rule
// names, which the test tells make not to run (make deps installs packages).
type pipedTarget struct {
	name    string
	prereqs []string
}

func pipedTestTargets(t *testing.T) []pipedTarget {
	t.Helper()
	f, err := os.Open("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rule := regexp.MustCompile(`^([a-z][a-z0-9-]*):([^=].*)?$`)
	var targets []pipedTarget
	var target *pipedTarget
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if m := rule.FindStringSubmatch(l); m != nil {
			target = &pipedTarget{name: m[1], prereqs: strings.Fields(m[2])}
			continue
		}
		if strings.HasPrefix(l, "\t") && strings.Contains(l, "$(GO) test") && strings.Contains(l, "| grep") && target != nil {
			targets = append(targets, *target)
			target = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return targets
}

// TestMakePipedTestTargetsFailWithTheirTests: make bench-cluster and make test-cluster,
// which filter go test's output, exit non-zero when the test fails and zero when it
// passes, run with GO naming a go that prints a failing (or passing) test's output.
func TestMakePipedTestTargetsFailWithTheirTests(t *testing.T) {
	for _, tool := range []string{"make", "bash", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	targets := pipedTestTargets(t)
	if len(targets) < 2 {
		t.Fatalf("found %q in the Makefile, want bench-cluster and test-cluster at least", targets)
	}
	// The fake go answers the Makefile's go env queries, then prints what a test run
	// prints, a Raft log line among it, and exits with FAKE_GO_STATUS.
	fake := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\nif [ \"$1\" = env ]; then echo /nonexistent; exit 0; fi\n" +
		"echo '--- RESULT: TestFake'; echo 'raft: a Raft log line'; exit \"$FAKE_GO_STATUS\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Under make test, the parent's flags (-i would ignore the recipe's failure) and
	// variables would reach the child through the environment.
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	for _, target := range targets {
		for _, status := range []string{"0", "1"} {
			t.Run(target.name+"/go-test-exits-"+status, func(t *testing.T) {
				args := []string{"-s", target.name, "GO=" + fake}
				for _, p := range target.prereqs {
					args = append(args, "-o", p)
				}
				cmd := exec.Command("make", args...)
				cmd.Env = append(env, "FAKE_GO_STATUS="+status)
				out, err := cmd.CombinedOutput()
				if failed := err != nil; failed != (status != "0") {
					t.Errorf("make %s exited with %v while go test exited %s:\n%s", target.name, err, status, out)
				}
				if !strings.Contains(string(out), "--- RESULT: TestFake") || strings.Contains(string(out), "raft:") {
					t.Errorf("make %s: want the test's output without Raft's lines, got:\n%s", target.name, out)
				}
			})
		}
	}
}
