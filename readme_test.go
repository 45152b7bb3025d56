package pmd_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// TestDocsNameTestsThatExist: every test, benchmark and fuzz target the README, the docs,
// the packages' doc.go files and the Makefile's -run patterns name (as where a promise is
// checked, or how to run a measurement) is a function of some _test.go file of the
// repository, so that go test -run NAME runs it: a renamed test left the README naming one
// that no longer existed, and a renamed TestCrashKill9 would leave make soak running no
// test and passing.
func TestDocsNameTestsThatExist(t *testing.T) {
	missing, err := testsNamedButMissing(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Error(m)
	}
}

// TestDocsNameTestsThatExistReadsEveryDoc: the check of the tests the docs name reads
// each kind of doc, the Makefile's -run patterns and the packages' doc.go files among
// them, and takes no test of ./data for one of the repository's.
func TestDocsNameTestsThatExistReadsEveryDoc(t *testing.T) {
	for _, tc := range []struct{ doc, text string }{
		{"README.md", "checked by TestKept and TestGone"},
		{"bench/README.md", "go test -run TestKept -bench BenchmarkGone"},
		{"docs/semantics.md", "TestKept, FuzzGone"},
		{"index/FORMAT.md", "TestKept TestGone"},
		{"Makefile", "soak:\n\tPMD_SOAK_ROUNDS=1 $(GO) test -run 'TestGone$$|TestKept$$' .\n"},
		{"doc.go", "// Package pmd: TestKept and TestGone check it.\npackage pmd\n"},
		{"pm/doc.go", "// Package pm: TestKept and TestGone check it.\npackage pm\n"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"README.md", "bench/README.md", "Makefile"} {
				writeRepoFile(t, filepath.Join(dir, f), "")
			}
			writeRepoFile(t, filepath.Join(dir, "kept_test.go"), "package pmd\n\nfunc TestKept(t *testing.T) {}\n")
			writeRepoFile(t, filepath.Join(dir, "data", "gone_test.go"), "package pmd\n\nfunc TestGone(t *testing.T) {}\nfunc BenchmarkGone(b *testing.B) {}\nfunc FuzzGone(f *testing.F) {}\n")
			writeRepoFile(t, filepath.Join(dir, tc.doc), tc.text)
			got, err := testsNamedButMissing(dir)
			if err != nil {
				t.Fatal(err)
			}
			gone := regexp.MustCompile(`\b\w+Gone\b`).FindString(tc.text)
			want := []string{filepath.FromSlash(tc.doc) + " names " + gone + ", which no _test.go file defines"}
			if !slices.Equal(got, want) {
				t.Errorf("with %s naming TestKept and %s, got %q, want %q", tc.doc, gone, got, want)
			}
		})
	}
}

// testsNamedButMissing reads the docs of the repository at dir (README.md,
// bench/README.md, docs/*.md, */FORMAT.md, every doc.go and the Makefile) and says which
// test, benchmark or fuzz target each names that no _test.go file defines.
func testsNamedButMissing(dir string) ([]string, error) {
	docs := []string{"README.md", filepath.Join("bench", "README.md"), "Makefile"}
	for _, pattern := range []string{"docs/*.md", "*/FORMAT.md"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		for _, p := range m {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return nil, err
			}
			docs = append(docs, rel)
		}
	}
	docGo, err := repoFiles(dir, func(name string) bool { return name == "doc.go" })
	if err != nil {
		return nil, err
	}
	docs = append(docs, docGo...)
	tests, err := repoFiles(dir, func(name string) bool { return strings.HasSuffix(name, "_test.go") })
	if err != nil {
		return nil, err
	}
	defined := map[string]bool{}
	for _, path := range tests {
		src, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			return nil, err
		}
		// Each line that starts with "func ", the file's first too.
		for rest := append([]byte("\n"), src...); ; {
			i := bytes.Index(rest, []byte("\nfunc "))
			if i < 0 {
				break
			}
			rest = rest[i+len("\nfunc "):]
			line, _, _ := bytes.Cut(rest, []byte("\n"))
			if n, _, ok := bytes.Cut(line, []byte("(")); ok {
				defined[string(n)] = true
			}
		}
	}
	var missing []string
	for _, doc := range docs {
		text, err := os.ReadFile(filepath.Join(dir, doc))
		if err != nil {
			return nil, err
		}
		for _, n := range testNames(text) {
			if !defined[n] {
				missing = append(missing, fmt.Sprintf("%s names %s, which no _test.go file defines", doc, n))
			}
		}
	}
	return missing, nil
}

// testNames lists the words of text that name a test, a benchmark or a fuzz target:
// Test, Benchmark or Fuzz, then a capital letter, letters, digits and underscores, as
// `\b(?:Test|Benchmark|Fuzz)[A-Z]\w*` would find them; that regexp took a second under
// -race to search the docs.
func testNames(text []byte) []string {
	var names []string
	for i := 0; i < len(text); i++ {
		if c := text[i]; c != 'T' && c != 'B' && c != 'F' || i > 0 && isWordByte(text[i-1]) {
			continue
		}
		for _, prefix := range []string{"Test", "Benchmark", "Fuzz"} {
			rest := text[i:]
			if !bytes.HasPrefix(rest, []byte(prefix)) || len(rest) == len(prefix) || rest[len(prefix)] < 'A' || rest[len(prefix)] > 'Z' {
				continue
			}
			end := i + len(prefix)
			for end < len(text) && isWordByte(text[end]) {
				end++
			}
			names = append(names, string(text[i:end]))
			i = end - 1
			break
		}
	}
	return names
}

// isWordByte says whether b is an ASCII letter, digit or underscore, as \w in a regexp.
func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// TestTestNames: testNames finds the names \b(?:Test|Benchmark|Fuzz)[A-Z]\w* would.
func TestTestNames(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"TestA_b9. and TestB", []string{"TestA_b9", "TestB"}},
		{"-run 'TestCrashKill9$$|TestX$$'", []string{"TestCrashKill9", "TestX"}},
		{"BenchmarkRead/16 FuzzName", []string{"BenchmarkRead", "FuzzName"}},
		{"Tests, Testing, Test, Fuzz_x, xTestA, _TestB, 9TestC", nil},
		{"(TestA)\nTestB", []string{"TestA", "TestB"}},
		{"ends with Test", nil},
	} {
		if got := testNames([]byte(tc.text)); !slices.Equal(got, tc.want) {
			t.Errorf("testNames(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}
