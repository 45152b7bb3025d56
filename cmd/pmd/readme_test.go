package main

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readmeCommands returns the command lines of README.md's "Command line" section:
// those of its code block (a line starting with spaces goes on the one before) and of
// its table, without their descriptions.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "## Command line":
			in = true
		case in && strings.HasPrefix(l, "## "):
			in = false
		case !in:
		case strings.HasPrefix(l, "```"):
			block = !block
		case block && strings.HasPrefix(l, "pmd "):
			cmd, _, _ := strings.Cut(l, "  ") // two spaces start the description
			lines = append(lines, cmd)
		case block && strings.HasPrefix(l, " ") && len(lines) > 0:
			lines[len(lines)-1] += " " + strings.TrimSpace(l)
		case strings.HasPrefix(l, "| `pmd "):
			cmd, _, _ := strings.Cut(strings.TrimPrefix(l, "| `"), "` |")
			lines = append(lines, strings.ReplaceAll(cmd, `\|`, "|"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

var flagName = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// TestReadmeCommandLineMatchesHelp: each command line README.md shows has a --help
// that exits 0 and names the same arguments and flags, and each command of pmd is in
// README.md.
func TestReadmeCommandLineMatchesHelp(t *testing.T) {
	lines := readmeCommands(t)
	if len(lines) < 10 {
		t.Fatalf("found %d command lines in README.md's Command line section: %q", len(lines), lines)
	}
	root := newRootCmd(nil, nil)
	documented := map[string]bool{}
	for _, line := range lines {
		t.Run(line, func(t *testing.T) {
			words := strings.Fields(line)[1:]
			// The command is the longest run of leading words naming one.
			n := 0
			for i := 1; i <= len(words); i++ {
				if c, rest, err := root.Find(words[:i]); err == nil && c != root && len(rest) == 0 {
					n = i
				}
			}
			if n == 0 {
				t.Fatalf("names no command of pmd")
			}
			path := "pmd " + strings.Join(words[:n], " ")
			for i := 1; i <= n; i++ { // pmd cluster status documents pmd cluster
				documented["pmd "+strings.Join(words[:i], " ")] = true
			}
			// Its arguments are what comes before the first flag.
			usage := path
			for _, w := range words[n:] {
				if strings.HasPrefix(w, "--") || strings.HasPrefix(w, "[--") {
					break
				}
				usage += " " + w
			}
			code, out, errOut := runPMD(t, context.Background(), append(words[:n:n], "--help")...)
			if code != exitOK {
				t.Fatalf("--help: exit %d:\n%s", code, errOut)
			}
			if !strings.Contains(out, usage) {
				t.Errorf("--help does not show %q:\n%s", usage, out)
			}
			for _, m := range flagName.FindAllStringSubmatch(line, -1) {
				if !regexp.MustCompile(`(^|\s)--?` + m[1] + `\b`).MatchString(out) {
					t.Errorf("--help does not name --%s:\n%s", m[1], out)
				}
			}
		})
	}
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		path := "pmd " + c.Name()
		if !documented[path] {
			t.Errorf("README.md's Command line section lacks %s", path)
		}
		if c.Name() == "completion" {
			continue // its subcommands are the shells of its one line
		}
		for _, sub := range c.Commands() {
			if !sub.Hidden && !documented[path+" "+sub.Name()] {
				t.Errorf("README.md's Command line section lacks %s %s", path, sub.Name())
			}
		}
	}
}
