package client_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippet checks that the README's client snippet is the part of Example
// between its README markers, which go test compiles and runs.
func TestReadmeSnippet(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	section := after(t, string(readme), "## Go client\n")
	snippet := between(t, section, "```go\n", "```\n")
	body := between(t, string(src), "\t// README begins\n", "\t// README ends\n")
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if got := strings.Join(lines, ""); got != snippet {
		t.Errorf("README snippet and Example differ:\nREADME:\n%s\nExample:\n%s", snippet, got)
	}
}

func after(t *testing.T, s, start string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q", start)
	}
	return s[i+len(start):]
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	s = after(t, s, start)
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return s[:j]
}
