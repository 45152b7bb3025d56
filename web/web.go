package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// securityHeaders are sent with every response. The policy allows the page's own
// script and style and requests to its own origin (the API); nothing inline, nothing
// from elsewhere.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
}

// contentTypes are set here rather than taken from the system's MIME tables, which
// differ between machines; the page relies on nosniff and exact types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the browser: the page at "/" and its assets. Any other path is 404,
// and methods other than GET and HEAD are 405. Assets are revalidated by ETag on every
// load, so a new pmd binary is picked up at once.
func Handler() http.Handler {
	assets := make(map[string]asset)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := "/" + p[len("static/"):]
		if name == "/index.html" {
			name = "/"
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "text/plain; charset=utf-8" // the vendored libraries' LICENSE and VERSION
		}
		assets[name] = asset{
			body:  body,
			ctype: ctype,
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a broken build.
		panic(fmt.Sprintf("web: read embedded files: %v", err))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			http.Error(w, fmt.Sprintf("no such page %q: the browser is at /", r.URL.Path), http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, fmt.Sprintf("%s is not allowed on %s: use GET", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
