package pmd_test

import (
	"bytes"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestExamplesCheckTheirOutput: go test runs an Example, and compares what it prints,
// only when its last comment group starts with "Output:". Those of this package and of
// client/ had "// Output:" on the line after "// README ends", one comment group that
// starts with "README ends": they were compiled, never run, and what they print never
// checked. Every Example of the module that writes "// Output:" must be one go test runs.
func TestExamplesCheckTheirOutput(t *testing.T) {
	files, err := repoFiles(".", func(name string) bool { return strings.HasSuffix(name, "_test.go") })
	if err != nil {
		t.Fatal(err)
	}
	examples := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// Only a file that writes "Output:" or "Unordered output:" somewhere can hold
		// such an Example: parsing every test file with its comments took seconds.
		if !bytes.Contains(src, []byte("utput:")) {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		checked := map[string]bool{}
		for _, ex := range doc.Examples(f) {
			checked["Example"+ex.Name] = ex.Output != "" || ex.EmptyOutput
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
				continue
			}
			for _, cg := range f.Comments {
				if cg.Pos() < fn.Body.Lbrace || cg.End() > fn.Body.Rbrace {
					continue
				}
				for _, c := range cg.List {
					if strings.HasPrefix(c.Text, "// Output:") || strings.HasPrefix(c.Text, "// Unordered output:") {
						examples++
						if !checked[fn.Name.Name] {
							t.Errorf("%s: %s writes %q, but go test does not check its output: it must start a comment group of its own, the last of the function", fset.Position(c.Pos()), fn.Name.Name, c.Text)
						}
					}
				}
			}
		}
	}
	if examples == 0 {
		t.Fatalf("found no Example that writes \"// Output:\" among the %d _test.go files, want this package's Example at least", len(files))
	}
}
