package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// loadOpenAPI parses and validates the served document, with its servers dropped so
// that its routes match a test server on any port.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	doc.Servers = nil
	return doc
}

// TestOpenAPIMatchesRoutes: every registered route is documented, and every
// documented operation is registered, with the same query parameters, consistency among
// them.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t, Options{})
	documented := map[string][]string{} // "GET /v1/all" → its query parameters
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var query []string
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value.In == "query" {
					query = append(query, p.Value.Name)
				}
			}
			slices.Sort(query)
			documented[method+" "+path] = query
		}
	}
	registered := map[string]bool{}
	for _, rt := range e.srv.table {
		key := rt.method + " " + rt.path
		registered[key] = true
		query, ok := documented[key]
		if !ok {
			t.Errorf("%s is registered but not in openapi.json", key)
			continue
		}
		// Every route also takes consistency, which ServeHTTP takes out of the query
		// before the route's own parameters are checked (cluster.go).
		params := slices.Sorted(slices.Values(append(slices.Clone(rt.params), "consistency")))
		if !slices.Equal(query, params) {
			t.Errorf("%s takes query parameters %v, openapi.json says %v", key, params, query)
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("%s is in openapi.json but not registered", key)
		}
	}
}

// TestAPIDocCoversRoutes: docs/api.md, the reference users read, names every
// registered route.
func TestAPIDocCoversRoutes(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{})
	for _, rt := range e.srv.table {
		if !strings.Contains(string(doc), "`"+rt.method+" "+rt.path) {
			t.Errorf("docs/api.md does not describe %s %s", rt.method, rt.path)
		}
	}
}

// TestRoutesAndOpenAPIServed: GET /v1/ lists the route table, GET /v1/openapi.json
// serves the document.
func TestRoutesAndOpenAPIServed(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("GET", "/v1/", nil).must(t, http.StatusOK)
	routes := r.body["routes"].([]any)
	if len(routes) != len(e.srv.table) {
		t.Fatalf("GET /v1/ lists %d routes, the table has %d", len(routes), len(e.srv.table))
	}
	for i, rt := range e.srv.table {
		got := routes[i].(map[string]any)
		if got["method"] != rt.method || got["path"] != rt.path || got["description"] == "" {
			t.Errorf("route %d listed as %v, registered as %s %s", i, got, rt.method, rt.path)
		}
	}
	raw := e.do("GET", "/v1/openapi.json", nil).must(t, http.StatusOK).raw
	if !bytes.Equal(raw, openAPI) {
		t.Fatal("GET /v1/openapi.json is not the embedded document")
	}
	text := string(e.do("GET", "/", nil).must(t, http.StatusOK).raw)
	for _, rt := range e.srv.table {
		if !strings.Contains(text, rt.path) {
			t.Errorf("the index page lacks %s", rt.path)
		}
	}
}

// validating is an http.RoundTripper that holds every exchange of a test to the
// OpenAPI document: the response's status and body always, the request when the
// server accepted it (a 2xx).
type validating struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper
}

func newValidating(t testing.TB, next http.RoundTripper) *validating {
	router, err := legacy.NewRouter(loadOpenAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	return &validating{t: t, router: router, next: next}
}

func (v *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil || req.Method == http.MethodOptions {
		return resp, err // a CORS preflight is HTTP's, not the API's
	}
	what := req.Method + " " + req.URL.RequestURI()
	if p := req.URL.Path; p == "/" || !strings.HasPrefix(p, "/v1/") && p != "/metrics" && p != "/healthz" {
		return resp, nil // the browser's pages are not the API
	}
	// The router matches the decoded path, so a stream name with a slash (a%2Fb)
	// would look like two segments: look it up under a name without one.
	find := req.Clone(req.Context())
	find.URL.RawPath = strings.ReplaceAll(req.URL.EscapedPath(), "%2F", "_")
	find.URL.Path = strings.ReplaceAll(req.URL.EscapedPath(), "%2F", "_")
	if p, err := url.PathUnescape(find.URL.Path); err == nil {
		find.URL.Path = p
	}
	route, params, ferr := v.router.FindRoute(find)
	if ferr != nil {
		// Only refusals may come from routes the document does not have.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed &&
			resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
			v.t.Errorf("openapi: %s answered %d but is not documented: %v", what, resp.StatusCode, ferr)
		}
		return resp, nil
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var respBody []byte
	if !stream {
		if respBody, err = io.ReadAll(resp.Body); err != nil {
			return nil, err
		}
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(respBody))
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: req.Clone(ctx), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	in.Request.Body = io.NopCloser(bytes.NewReader(reqBody))
	if resp.StatusCode/100 == 2 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			v.t.Errorf("openapi: the server accepted %s, the document does not: %v\nbody: %.300s", what, err, reqBody)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: stream, MultiError: true},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		var me openapi3.MultiError
		if errors.As(err, &me) && len(me) > 3 {
			me = me[:3]
			err = me
		}
		v.t.Errorf("openapi: the answer %d to %s is not as documented: %v\nbody: %.300s", resp.StatusCode, what, err, respBody)
	}
	return resp, nil
}

// TestValidatingCatchesDrift: the validating transport fails a test whose exchange
// the document does not describe, so that the server tests can be trusted to check it.
func TestValidatingCatchesDrift(t *testing.T) {
	tests := []struct{ name, path, answer string }{
		{"an undocumented field", "/v1/streams/s", `{"events":[],"next":null,"extra":1}`},
		{"a missing field", "/v1/all", `{"events":[]}`},
		{"a wrong type", "/v1/streams", `{"streams":[{"name":"s","version":"0","exists":true}],"next":null}`},
		{"an undocumented route", "/v1/nowhere", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drift := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.answer)
			}))
			defer drift.Close()
			rec := &recordingTB{TB: t}
			client := http.Client{Transport: newValidating(rec, http.DefaultTransport)}
			resp, err := client.Get(drift.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(rec.errors) == 0 {
				t.Fatalf("%s passed validation", tt.answer)
			}
		})
	}
}

// recordingTB records errors instead of failing.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
