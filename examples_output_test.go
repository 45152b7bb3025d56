package pmd_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplesCheckTheirOutput: go test runs an Example, and compares what it prints,
// only when its last comment group starts with "Output:". Those of this package and of
// client/ had "// Output:" on the line after "// README ends", one comment group that
// starts with "README ends": they were compiled, never run, and what they print never
// checked. Every Example of the module that writes "// Output:" must be one go test runs.
func TestExamplesCheckTheirOutput(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
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
						if !checked[fn.Name.Name] {
							t.Errorf("%s: %s writes %q, but go test does not check its output: it must start a comment group of its own, the last of the function", fset.Position(c.Pos()), fn.Name.Name, c.Text)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
