package browsertest

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestBrowserShowsWholeFloatsAsFloats: a float with no fraction shows as the daemon
// writes it, 2.0, as an integer past 2^53 does: the page read 2.0 into the number 2 and
// showed it as the integer 2, 100000000000000000000.0 (1e20) as an integer and -0.0
// as 0.
func TestBrowserShowsWholeFloatsAsFloats(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t, "--config", "")
	d.call(t, "POST", "/v1/streams/Float$1", `{"events":[{"type":"Priced","data":{"whole":2.0,"big":1e20,"neg_zero":-0.0,"int":2,"half":2.5,"n":9007199254740993}}]}`, http.StatusCreated)
	b := newBrowser(t, d.browserBase(t))
	t.Cleanup(func() { b.check(t) })
	text := func(selector string) string {
		t.Helper()
		var s string
		b.eval(t, `(n => n ? n.innerText : '<missing>')(document.querySelector('`+selector+`'))`, &s)
		return s
	}
	tests := []struct {
		page, selector, sep string
	}{
		{"stream", "main tbody td.preview", ":"},
		{"event", "main .cols pre", ": "},
	}
	for _, tt := range tests {
		if tt.page == "stream" {
			b.open(t, "#/streams/Float%241", "stream")
		} else {
			b.click(t, "main tbody td.id a", "event")
		}
		got := text(tt.selector)
		for _, want := range []string{`"whole"` + tt.sep + `2.0`, `"big"` + tt.sep + `100000000000000000000.0`, `"neg_zero"` + tt.sep + `-0.0`,
			`"int"` + tt.sep + `2,`, `"half"` + tt.sep + `2.5`, `"n"` + tt.sep + `9007199254740993`} {
			if !strings.Contains(got, want) {
				t.Errorf("the %s page shows %s, want %s in it", tt.page, got, want)
			}
		}
	}
}
