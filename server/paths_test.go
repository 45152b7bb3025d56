package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUncleanPathsAreRefused: a path with an empty or a dot segment is refused with the
// contract's JSON, never redirected. net/http's redirect escapes the escaped path again
// (Order%247 → Order%25247), so a client that follows it, keeping the method and body
// as a 307 says, would write to another stream.
func TestUncleanPathsAreRefused(t *testing.T) {
	e := newEnv(t, Options{})
	e.append("s", "no_stream", ev("E", nil)).must(t, http.StatusCreated)
	body := `{"events":[{"type":"E"}]}`
	tests := []struct {
		method, path, body string
		clean              string // named in the message
	}{
		{"POST", "//v1/streams/Order%247", body, "/v1/streams/Order%247"},
		{"POST", "/v1//streams/a%2Fb", body, "/v1/streams/a%2Fb"},
		{"POST", "/v1/x/../streams/Order%247", body, "/v1/streams/Order%247"},
		{"POST", "/v1/streams/./Order%247", body, "/v1/streams/Order%247"},
		{"POST", "/v1/streams/s/links/..", `{"event_ids":[]}`, "/v1/streams/s"},
		{"DELETE", "//v1/streams/s", "", "/v1/streams/s"},
		{"GET", "/v1/streams/s/.", "", "/v1/streams/s"},
		{"GET", "/v1", "", "/v1/"},
		{"GET", "/v1/.", "", "/v1/"},
		{"GET", "//healthz", "", "/healthz"},
		{"GET", "/x/../metrics", "", "/metrics"},
	}
	// Whether or not the client follows redirects, nothing is written.
	follows := &http.Client{}
	stops := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		for _, c := range []*http.Client{follows, stops} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				before := e.store.LastPosition()
				req, err := http.NewRequest(tt.method, e.ts.URL+tt.path, strings.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				var got errorBody
				if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(raw, &got) != nil || got.Error != codeNotFound {
					t.Fatalf("%d %s %q, want 404 not_found as JSON", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
				}
				if !strings.Contains(got.Message, `"`+tt.clean+`"`) {
					t.Fatalf("message %q does not name %q", got.Message, tt.clean)
				}
				if after := e.store.LastPosition(); after != before {
					t.Fatalf("the store went from position %d to %d", before, after)
				}
			})
		}
	}
	if r := e.do("GET", "/v1/streams/s", nil).must(t, http.StatusOK); len(r.events(t)) != 1 {
		t.Fatalf("stream s: %s, want its one event", r.raw)
	}
}

// TestUncleanBrowserPathsRedirect: the browser's pages keep the redirect to the clean
// path, with the path's escapes kept as they came.
func TestUncleanBrowserPathsRedirect(t *testing.T) {
	e := newEnv(t, Options{Browser: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page "+r.URL.EscapedPath())
	})})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct{ path, location string }{
		{"//processes/Order%247", "/processes/Order%247"},
		{"/a/../b%25c?q=%24", "/b%25c?q=%24"},
		{"/static/./app.js", "/static/app.js"},
		{"/x/..", "/"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := c.Get(e.ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != tt.location {
				t.Fatalf("%d to %q, want 307 to %q", resp.StatusCode, resp.Header.Get("Location"), tt.location)
			}
		})
	}
}
