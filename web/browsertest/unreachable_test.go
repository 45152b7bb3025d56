package browsertest

import (
	"net/http"
	"os"
	"testing"
)

// TestBrowserSaysPmdIsUnreachable: a page whose request to the API gets no answer at
// all (pmd is down, the connection drops) says it could not reach pmd, as Retry and
// Skip do, not only the browser's "Failed to fetch".
func TestBrowserSaysPmdIsUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	d := startDaemon(t)
	base := front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		// No answer: the connection is closed unanswered, as a daemon going down does.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack %s: %v", r.URL, err)
			return false
		}
		conn.Close()
		return true
	})
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	b.open(t, "#/streams/Order%241", "error")
	var text string
	b.eval(t, `document.querySelector('main .error').textContent`, &text)
	if want := "could not reach pmd: Failed to fetch"; text != want {
		t.Errorf("the page says %q, want %q", text, want)
	}
}
