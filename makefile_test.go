package pmd_test

import (
	"bufio"
	"fmt"
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
	var targets []pipedTarget
	var target *pipedTarget
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if name, prereqs, ok := makeRule(l); ok {
			target = &pipedTarget{name: name, prereqs: prereqs}
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

// makeRuleLine is a line of the Makefile that starts a rule of a target of its own (not
// $(STATICCHECK), not .PHONY, not a target-specific variable such as SHELL := bash), its
// prerequisites, and after " ## " what make help says of it.
var makeRuleLine = regexp.MustCompile(`^([a-z][a-z0-9-]*):([^=#]*)(?:## .*)?$`)

// makeRule says whether line l starts a rule, and its target and prerequisites.
func makeRule(l string) (name string, prereqs []string, ok bool) {
	m := makeRuleLine.FindStringSubmatch(l)
	if m == nil {
		return "", nil, false
	}
	return m[1], strings.Fields(m[2]), true
}

// TestMakeHelpListsEveryTarget: make help lists every target of the Makefile, each with
// what it does, so that a newcomer finds them (make soak, make bench-scale ...) without
// reading the Makefile.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make: %v", err)
	}
	src, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, l := range strings.Split(string(src), "\n") {
		if name, _, ok := makeRule(l); ok {
			targets = append(targets, name)
		}
	}
	if len(targets) < 10 {
		t.Fatalf("found the targets %q in the Makefile, want run, test and the rest", targets)
	}
	cmd := exec.Command("make", "-s", "help")
	cmd.Env = makeEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	said := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			said[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for _, target := range targets {
		if said[target] == "" {
			t.Errorf("make help does not list %s with what it does; it printed:\n%s", target, out)
		}
	}
}

// makeEnv is this process's environment without what a parent make (make test) passes
// its children: its flags (-i would ignore a recipe's failure, -n run nothing) and variables.
func makeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	return env
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
	env := makeEnv()
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

// TestMakeStaticcheckInstallsItsVersion: make staticcheck (and so make lint and make test)
// runs the staticcheck of STATICCHECK_VERSION, installing it when the one where go install
// puts it (GOBIN when go's settings name one, else the bin of GOPATH's first entry) is
// missing or another version, as one a newcomer installed long ago, built for an older
// Go, is; and installs nothing when it is that version. GO names a fake go that answers
// the Makefile's go env queries with FAKE_GOBIN and FAKE_GOPATH, and whose install writes
// a staticcheck of the version asked for where the real go would. The Makefile looked in
// $GOPATH/bin only: with GOBIN set it installed on every run, then found no staticcheck.
func TestMakeStaticcheckInstallsItsVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make: %v", err)
	}
	fakeStaticcheck := func(version string) string {
		return "#!/bin/sh\nif [ \"$1\" = -version ]; then echo 'staticcheck 2099.1 (" + version + ")'; fi\n"
	}
	// The fake go's install writes where the real one does: $GOBIN, else the bin of
	// GOPATH's first entry.
	script := "#!/bin/sh\ncase \"$1\" in\n" +
		"env) case \"$2\" in GOBIN) echo \"$FAKE_GOBIN\";; GOPATH) echo \"$FAKE_GOPATH\";; *) echo /nonexistent;; esac;;\n" +
		"install) echo \"$2\" >>\"$FAKE_INSTALLS\"\n" +
		"\tbin=${FAKE_GOBIN:-${FAKE_GOPATH%%:*}/bin}; mkdir -p \"$bin\" &&\n" +
		"\tprintf '%s' \"$FAKE_STATICCHECK\" >\"$bin/staticcheck\" && chmod +x \"$bin/staticcheck\";;\n" +
		"*) exit 1;;\nesac\n"
	for _, tc := range []struct {
		name      string
		gobin     bool   // whether go's settings name a GOBIN (dir/gobin)
		gopaths   int    // how many entries GOPATH lists (dir/gopath0, dir/gopath1 ...)
		installed string // the version staticcheck where go install puts it says it is; "" for none
		install   bool
	}{
		{"missing", false, 1, "", true},
		{"older", false, 1, "0.4.7", true},
		{"the same", false, 1, "9.9.9", false},
		{"GOBIN set/missing", true, 1, "", true},
		{"GOBIN set/older", true, 1, "0.4.7", true},
		{"GOBIN set/the same", true, 1, "9.9.9", false},
		{"GOPATH a list/missing", false, 2, "", true},
		{"GOPATH a list/the same", false, 2, "9.9.9", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var gopath []string
			for i := range tc.gopaths {
				gopath = append(gopath, filepath.Join(dir, fmt.Sprintf("gopath%d", i)))
			}
			bin := filepath.Join(gopath[0], "bin")
			gobin := ""
			if tc.gobin {
				gobin = filepath.Join(dir, "gobin")
				bin = gobin
			}
			if tc.installed != "" {
				if err := os.MkdirAll(bin, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(bin, "staticcheck"), []byte(fakeStaticcheck(tc.installed)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			installs := filepath.Join(dir, "installs")
			fake := filepath.Join(dir, "go")
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("make", "-s", "staticcheck", "GO="+fake, "STATICCHECK_VERSION=v9.9.9")
			cmd.Env = append(makeEnv(), "FAKE_STATICCHECK="+fakeStaticcheck("9.9.9"), "FAKE_INSTALLS="+installs,
				"FAKE_GOBIN="+gobin, "FAKE_GOPATH="+strings.Join(gopath, string(os.PathListSeparator)))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make staticcheck: %v\n%s", err, out)
			}
			got, err := os.ReadFile(installs)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			want := ""
			if tc.install {
				want = "honnef.co/go/tools/cmd/staticcheck@v9.9.9\n"
			}
			if string(got) != want {
				t.Errorf("with staticcheck %q installed in %s, make staticcheck ran go install %q, want %q:\n%s", tc.installed, bin, got, want, out)
			}
		})
	}
}

// TestMakeBuildSaysWhichGoItNeeds: make build (and so make run, a newcomer's first
// command) on a machine whose go is missing or older than 1.21 (Debian 12's golang-go
// is 1.19), a pre-release of an older one among them, fails saying that pmd needs Go
// 1.21 or later and how to name one, and builds nothing; with Go 1.21 or later, a
// pre-release of 1.21 among them, it builds. check-go.sh took go1.20rc1 and go1.19beta1
// for later than 1.21.
func TestMakeBuildSaysWhichGoItNeeds(t *testing.T) {
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	// The fake go records its arguments and says it is FAKE_GOVERSION.
	fake := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\necho \"$@\" >>\"$FAKE_CALLS\"\n" +
		"if [ \"$1\" = env ] && [ \"$2\" = GOVERSION ]; then echo \"$FAKE_GOVERSION\"; fi\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, version string // version "" is a go too old to say it
		missing       bool
		builds        bool
	}{
		{name: "missing", missing: true},
		{name: "too old to say", version: ""},
		{name: "go1.19", version: "go1.19.8"},
		{name: "go1.20.3", version: "go1.20.3"},
		{name: "go1.20", version: "go1.20"},
		{name: "go1.20rc1", version: "go1.20rc1"},
		{name: "go1.19beta1", version: "go1.19beta1"},
		{name: "go1.9", version: "go1.9.7"},
		{name: "devel go1.20", version: "devel go1.20-0123abc Tue Jan 1 00:00:00 2023 +0000"},
		{name: "go1.21rc2", version: "go1.21rc2", builds: true},
		{name: "go1.21", version: "go1.21", builds: true},
		{name: "go1.21.0", version: "go1.21.0", builds: true},
		{name: "go1.26.1", version: "go1.26.1", builds: true},
		{name: "go1.100", version: "go1.100.0", builds: true},
		{name: "experiment", version: "go1.26.0 X:nodwarf5", builds: true},
		{name: "devel go1.27", version: "devel go1.27-0123abc Tue Jan 1 00:00:00 2026 +0000", builds: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			calls := filepath.Join(dir, "calls")
			goBin := fake
			if tc.missing {
				goBin = filepath.Join(dir, "nonexistent", "go")
			}
			cmd := exec.Command("make", "-s", "build", "GO="+goBin)
			cmd.Env = append(makeEnv(), "FAKE_CALLS="+calls, "FAKE_GOVERSION="+tc.version)
			out, err := cmd.CombinedOutput()
			ran, rerr := os.ReadFile(calls)
			if rerr != nil && !os.IsNotExist(rerr) {
				t.Fatal(rerr)
			}
			built := strings.Contains(string(ran), "build")
			if tc.builds {
				if err != nil || !built {
					t.Errorf("make build with a go that says %q: %v, want it to build; go ran with:\n%s\nmake said:\n%s", tc.version, err, ran, out)
				}
				return
			}
			if err == nil {
				t.Errorf("make build with a go that says %q succeeded:\n%s", tc.version, out)
			}
			if !strings.Contains(string(out), "pmd needs Go 1.21 or later") || !strings.Contains(string(out), goBin) {
				t.Errorf("make build with GO=%s saying %q: want it to name that go and say pmd needs Go 1.21 or later, got:\n%s", goBin, tc.version, out)
			}
			if built {
				t.Errorf("make build with a go that says %q ran go build:\n%s", tc.version, ran)
			}
		})
	}
}
