package pmd_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoFilesNameDocsThatExist: every .md file the Go files of the repository name (a
// comment saying where a promise is written down) is one the repository holds: code and
// tests named CONTRACT.md, sections of it, and "CONTRACT section 10", a document the
// repository does not hold, where docs/api.md, docs/cluster.md and docs/semantics.md say it.
func TestGoFilesNameDocsThatExist(t *testing.T) {
	missing, err := docsNamedButMissing(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Error(m)
	}
}

// TestDocsNamedButMissing: docsNamedButMissing takes a doc named by its path from the
// repository's root or from the file's directory, or by its name alone when the
// repository holds one of that name, and says which a Go file names but the repository
// does not hold, "CONTRACT" as a word among them.
func TestDocsNamedButMissing(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string // "" for nothing missing
	}{
		{"from the root", "// see docs/api.md, \"Access\"", ""},
		{"from the file's directory", "// see ../../docs/api.md and FORMAT.md", ""},
		{"by its name", "// as api.md says", ""},
		{"a pattern", "// docs/*.md and */FORMAT.md", ""},
		{"missing", "// (CONTRACT.md section 9)", "CONTRACT.md"},
		{"missing from the directory", "// see docs/FORMAT.md", "docs/FORMAT.md"},
		{"the contract by its name", "// /healthz needs no token (CONTRACT section 10)", "CONTRACT"},
		{"a word of a name", "// the CONTRACTS of a LICENSE_CONTRACT", ""},
		{"in testdata", "// filepath.Join(\"testdata\", \"golden.md\")", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRepoFile(t, filepath.Join(dir, "docs", "api.md"), "")
			writeRepoFile(t, filepath.Join(dir, "pkg", "sub", "FORMAT.md"), "")
			writeRepoFile(t, filepath.Join(dir, "pkg", "sub", "testdata", "golden.md"), "")
			writeRepoFile(t, filepath.Join(dir, "pkg", "sub", "sub.go"), tc.src+"\npackage sub\n")
			got, err := docsNamedButMissing(dir)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tc.want != "" {
				want = []string{filepath.Join("pkg", "sub", "sub.go") + " names " + tc.want + ", which the repository does not hold"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("with %q, got %q, want %q", tc.src, got, want)
			}
		})
	}
}

// docsNamedButMissing says which .md file each Go file of the repository at dir names
// but the repository does not hold, by its path from dir, from the Go file's directory or
// its testdata, or, named alone, by its name; and which names CONTRACT, which it does not
// hold either. It leaves this file out, whose tests name missing docs on purpose.
func docsNamedButMissing(dir string) ([]string, error) {
	docs, err := repoFiles(dir, func(name string) bool { return strings.HasSuffix(name, ".md") })
	if err != nil {
		return nil, err
	}
	docNames := map[string]bool{}
	for _, d := range docs {
		docNames[filepath.Base(d)] = true
	}
	goFiles, err := repoFiles(dir, func(name string) bool { return strings.HasSuffix(name, ".go") })
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range goFiles {
		if f == "docrefs_test.go" {
			continue // its tests name missing docs on purpose
		}
		src, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		for _, ref := range mdNames(src) {
			if strings.Contains(ref, "*") {
				continue // a pattern, as docs/*.md
			}
			name := strings.TrimPrefix(ref, "/")
			if !strings.Contains(name, "/") && docNames[name] {
				continue
			}
			held := false
			for _, p := range []string{
				filepath.Join(dir, name), filepath.Join(dir, filepath.Dir(f), name),
				filepath.Join(dir, filepath.Dir(f), "testdata", name), // filepath.Join("testdata", "x.md")
			} {
				if _, err := os.Stat(p); err == nil {
					held = true
					break
				} else if !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
			}
			if !held {
				missing = append(missing, fmt.Sprintf("%s names %s, which the repository does not hold", f, ref))
			}
		}
		for i := 0; ; {
			j := bytes.Index(src[i:], []byte("CONTRACT"))
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len("CONTRACT")
			i = end
			if (start > 0 && isWordByte(src[start-1])) || (end < len(src) && isWordByte(src[end])) ||
				bytes.HasPrefix(src[end:], []byte(".md")) { // said above
				continue
			}
			missing = append(missing, fmt.Sprintf("%s names CONTRACT, which the repository does not hold", f))
		}
	}
	return missing, nil
}

// mdNames lists the names of .md files src holds: each ".md" that ends a word, with the
// letters, digits and _ . / - * before it.
func mdNames(src []byte) []string {
	var names []string
	for i := 0; ; {
		j := bytes.Index(src[i:], []byte(".md"))
		if j < 0 {
			return names
		}
		dot, end := i+j, i+j+len(".md")
		i = end
		if end < len(src) && isWordByte(src[end]) {
			continue // .mdx, .mdown
		}
		start := dot
		for start > 0 && (isWordByte(src[start-1]) || strings.IndexByte("./-*", src[start-1]) >= 0) {
			start--
		}
		if start < dot {
			names = append(names, string(src[start:end]))
		}
	}
}
