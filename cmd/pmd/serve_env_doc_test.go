package main

import (
	"context"
	"os"
	"regexp"
	"testing"
)

// TestServeEnvironmentDocumented: every environment variable pmd serve --help names is
// in main's doc, or among those of access in docs/api.md, which main's doc points to:
// PMD_CLUSTER_SECRET_FILE was in neither.
func TestServeEnvironmentDocumented(t *testing.T) {
	code, out, errOut := runPMD(t, context.Background(), "serve", "--help")
	vars := regexp.MustCompile(`\(env (PMD_[A-Z_]+)\)`).FindAllStringSubmatch(out+errOut, -1)
	if code != exitOK || len(vars) < 10 {
		t.Fatalf("serve --help: exit %d, %d variables:\n%s%s", code, len(vars), out, errOut)
	}
	var docs string
	for _, f := range []string{"main.go", "../../docs/api.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs += string(b)
	}
	for _, v := range vars {
		if !regexp.MustCompile(`\b` + v[1] + `\b`).MatchString(docs) {
			t.Errorf("%s is in pmd serve --help, not in main.go's doc nor docs/api.md", v[1])
		}
	}
}
