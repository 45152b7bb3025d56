package browsertest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
)

// frontEditing is front with the daemon's JSON answers to paths passed through edit
// before the browser gets them, with the daemon's status.
func frontEditing(t *testing.T, d *daemon, edit func(body map[string]any), paths ...string) string {
	t.Helper()
	return front(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !slices.Contains(paths, r.URL.Path) {
			return false
		}
		res, err := http.Get(d.base + r.URL.RequestURI())
		if err != nil {
			t.Error(err)
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("GET %s: %s: %v", r.URL, b, err)
			return false
		}
		edit(body)
		answer(w, res.StatusCode, body)
		return true
	})
}
