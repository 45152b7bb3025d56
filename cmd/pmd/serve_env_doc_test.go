package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestServeEnvironmentDocumented: every environment variable pmd serve --help names is
// in main's doc, or among those of access in docs/api.md, which main's doc points to:
// PMD_CLUSTER_SECRET_FILE was in neither. Only main.go's doc comment counts, the text
// before "package main": its code names every variable the doc should.
func TestServeEnvironmentDocumented(t *testing.T) {
	code, out, errOut := runPMD(t, context.Background(), "serve", "--help")
	vars := regexp.MustCompile(`\(env (PMD_[A-Z_]+)\)`).FindAllStringSubmatch(out+errOut, -1)
	if code != exitOK || len(vars) < 10 {
		t.Fatalf("serve --help: exit %d, %d variables:\n%s%s", code, len(vars), out, errOut)
	}
	main, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, ok := strings.Cut(string(main), "\npackage main\n")
	if !ok {
		t.Fatal("main.go has no \"package main\" line")
	}
	api, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := doc + string(api)
	for _, v := range vars {
		if !regexp.MustCompile(`\b` + v[1] + `\b`).MatchString(docs) {
			t.Errorf("%s is in pmd serve --help, not in main.go's doc nor docs/api.md", v[1])
		}
	}
}
