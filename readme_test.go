package pmd_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeSnippet checks that the README's embedding snippet is the body of Example,
// which go test compiles and runs: a snippet that drifts from the API fails here.
func TestReadmeSnippet(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	snippet := between(t, string(readme), "## Embedding the store\n\n```go\n", "```\n")
	body := between(t, string(src), "\t// README begins\n", "\t// README ends\n")
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if got := strings.Join(lines, ""); got != snippet {
		t.Errorf("README snippet and Example differ:\nREADME:\n%s\nExample:\n%s", snippet, got)
	}
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q", start)
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		t.Fatalf("no %q after %q", end, start)
	}
	return s[:j]
}

// TestDocsNameTestsThatExist: every test, benchmark and fuzz target the README and the
// docs name (as where a promise is checked, or how to run a measurement) is a function of
// some _test.go file of the repository, so that go test -run NAME runs it: a renamed test
// left the README naming one that no longer existed.
func TestDocsNameTestsThatExist(t *testing.T) {
	docs := []string{"README.md", "bench/README.md"}
	for _, pattern := range []string{"docs/*.md", "*/FORMAT.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m...)
	}
	name := regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*`)
	defined := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(src), "\n") {
			if f, ok := strings.CutPrefix(l, "func "); ok {
				if n, _, ok := strings.Cut(f, "("); ok {
					defined[n] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(text), -1) {
			if !defined[n] {
				t.Errorf("%s names %s, which no _test.go file defines", doc, n)
			}
		}
	}
}
