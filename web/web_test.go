package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string // prefix
		body         string // a part of it
	}{
		{"GET", "/", 200, "text/html", `<script src="/app.js" defer></script>`},
		{"GET", "/app.js", 200, "text/javascript", "function el("},
		{"GET", "/app.css", 200, "text/css", "ol.timeline"},
		{"GET", "/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/vendor/uplot/uPlot.iife.min.js", 200, "text/javascript", "uPlot"},
		{"GET", "/vendor/uplot/uPlot.min.css", 200, "text/css", ".uplot"},
		{"GET", "/vendor/uplot/LICENSE", 200, "text/plain", "MIT"},
		{"HEAD", "/", 200, "text/html", ""},
		// Only "/" is the page: the route lives in the fragment, never in the path.
		{"GET", "/index.html", 404, "text/plain", `no such page "/index.html"`},
		{"GET", "/streams/Order$1", 404, "text/plain", "the browser is at /"},
		{"GET", "/static/app.js", 404, "text/plain", "no such page"},
		{"POST", "/", 405, "text/plain", "POST is not allowed on /"},
		{"DELETE", "/app.js", 405, "text/plain", "use GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := get(t, h, tc.method, tc.path, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s…", ct, tc.ctype)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body lacks %q:\n%.300s", tc.body, body)
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD answered with a body of %d bytes", len(body))
			}
			if tc.status == 405 && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", res.Header.Get("Allow"))
			}
			// Every answer carries the policy, error pages included.
			for k, v := range securityHeaders {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	csp := Handler()
	res := get(t, csp, "GET", "/", nil)
	policy := map[string]string{}
	for _, d := range strings.Split(res.Header.Get("Content-Security-Policy"), ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		policy[name] = value
	}
	// What the escaping promise and "works offline" lean on: nothing inline runs, and
	// nothing is fetched from another origin.
	for directive, want := range map[string]string{
		"default-src": "'none'",
		"script-src":  "'self'",
		"connect-src": "'self'",
		"style-src":   "'self'",
		"base-uri":    "'none'",
	} {
		if policy[directive] != want {
			t.Errorf("%s is %q, want %q (policy %v)", directive, policy[directive], want, policy)
		}
	}
}

func TestRevalidatedByETag(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/app.js", "/app.css"} {
		first := get(t, h, "GET", path, nil)
		etag := first.Header.Get("ETag")
		if etag == "" || first.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q, Cache-Control %q", path, etag, first.Header.Get("Cache-Control"))
		}
		again := get(t, h, "GET", path, http.Header{"If-None-Match": {etag}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: status %d, want 304", path, again.StatusCode)
		}
		other := get(t, h, "GET", path, http.Header{"If-None-Match": {`"stale"`}})
		if other.StatusCode != http.StatusOK {
			t.Errorf("%s with a stale ETag: status %d, want 200", path, other.StatusCode)
		}
	}
}

// TestPageLoadsOnlyItsOwnAssets checks that every file the page refers to is served,
// and that none of it points anywhere but the daemon: the browser works offline.
func TestPageLoadsOnlyItsOwnAssets(t *testing.T) {
	h := Handler()
	index, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html refers to %d files, want the script, the style and the icon", len(refs))
	}
	for _, m := range refs {
		if res := get(t, h, "GET", m[1], nil); res.StatusCode != http.StatusOK {
			t.Errorf("index.html refers to %s, which answers %d", m[1], res.StatusCode)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		for _, u := range external.FindAllString(string(b), -1) {
			// The SVG namespace, and the project page in a vendored library's banner
			// comment, are never fetched.
			if u != "http://www.w3.org" && !(strings.HasPrefix(p, "static/vendor/") && strings.Contains(firstLine(b), "/*! "+u)) {
				t.Errorf("%s refers to %s: the browser must not need the network", p, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// TestScriptNeverParsesHTML guards the escaping promise at its source: the script has
// no way to turn a string into markup or code.
func TestScriptNeverParsesHTML(t *testing.T) {
	js, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "createContextualFragment", "DOMParser"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s: build elements with el() and text instead", sink)
		}
	}
}
