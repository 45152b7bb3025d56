package server

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAPIDocGivesNoEmptyQueryValue: a route in docs/api.md (`GET /v1/...`, `/v1/...`
// or a query's continuation, `&...`) gives no query parameter an empty value
// (?from=&limit=): the daemon refuses an empty value with 400 bad_request, so a route
// copied as it stands would fail. The doc names a route's optional parameters instead.
func TestAPIDocGivesNoEmptyQueryValue(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	span := regexp.MustCompile("`[^`\n]+`")
	empty := regexp.MustCompile(`[?&][A-Za-z_]+=(&|$)`)
	for i, line := range strings.Split(string(doc), "\n") {
		for _, s := range span.FindAllString(line, -1) {
			s = strings.Trim(s, "`")
			method, rest, _ := strings.Cut(s, " ")
			route := strings.HasPrefix(s, "/v1/") || strings.HasPrefix(s, "&") ||
				slices.Contains(httpMethods, method) && strings.HasPrefix(rest, "/")
			if !route {
				continue
			}
			if empty.MatchString(s) {
				t.Errorf("docs/api.md:%d: %q gives a query parameter an empty value, which is refused", i+1, s)
			}
		}
	}
}
