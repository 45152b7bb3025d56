package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

func sha(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The tokens of the access tests: one of each scope, and one limited to streams.
const testTokens = `
tokens:
  - {name: reader, sha256: %s, scopes: [read]}
  - {name: writer, sha256: %s, scopes: [write]}
  - {name: admin,  sha256: %s, scopes: [read, admin]}
  - {name: orders, sha256: %s, scopes: [write], streams: ["Order$"]}
`

func testTokenFile(t *testing.T) string {
	return writeFile(t, "tokens.yaml", fmt.Sprintf(testTokens, sha("r-secret"), sha("w-secret"), sha("a-secret"), sha("o-secret")))
}

func TestTokenFileErrors(t *testing.T) {
	h := sha("x")
	tests := []struct{ name, file, want string }{
		{"no tokens", "tokens: []\n", "no tokens"},
		{"not YAML", "tokens: [\n", "token file"},
		{"unknown key", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read], stream: [x]}\n", `:2: tokens[0]: unknown key "stream" (known keys: name, sha256, scopes, streams)`},
		{"unknown top-level key", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read]}\ntoken:\n  - {name: b}\n", `:3: unknown key "token" (known keys: tokens)`},
		{"no name", "tokens:\n  - {sha256: " + h + ", scopes: [read]}\n", ":2: tokens[0]: name is missing"},
		{"name twice", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read]}\n  - {name: a, sha256: " + sha("y") + ", scopes: [read]}\n", `:3: tokens[1]: the name "a" is used twice`},
		{"token in the clear", "tokens:\n  - {name: a, sha256: my-secret, scopes: [read]}\n", "sha256 must be 64 hex digits"},
		{"same token twice", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read]}\n  - {name: b, sha256: " + h + ", scopes: [read]}\n", "the same token as a"},
		{"no scopes", "tokens:\n  - {name: a, sha256: " + h + "}\n", "scopes is missing"},
		{"unknown scope", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [root]}\n", `unknown scope "root"`},
		{"empty streams", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read], streams: []}\n", "streams is empty"},
		{"empty prefix", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read], streams: [\"\"]}\n", "an empty stream prefix"},
		{"null streams", "tokens:\n  - name: a\n    sha256: " + h + "\n    scopes: [read]\n    streams:\n", ":2: tokens[0] (a): streams is empty"},
		{"tilde streams", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read], streams: ~}\n", "streams is empty"},
		{"dollar prefix", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read], streams: [\"Order$\", \"$all\"]}\n", `:2: tokens[0] (a): stream prefix "$all" starts with $`},
		{"second document", "tokens:\n  - {name: a, sha256: " + h + ", scopes: [read]}\n---\ntokens:\n  - {name: b, sha256: " + sha("y") + ", scopes: [read]}\n", "a second YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadTokens(writeFile(t, "tokens.yaml", tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// A merge key takes another entry's keys, as it did before unknown keys were named.
	merged := "tokens:\n  - &a {name: a, sha256: " + h + ", scopes: [read]}\n  - {<<: *a, name: b, sha256: " + sha("y") + "}\n"
	if tokens, err := LoadTokens(writeFile(t, "tokens.yaml", merged)); err != nil || tokens.Len() != 2 {
		t.Fatalf("a token file with a merge key: %v, want its two tokens", err)
	}
	if _, err := LoadTokens(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a missing token file loaded")
	}
}

// TestTokensReload: Reload picks up a changed file, and keeps the tokens in use when
// the new file is bad.
func TestTokensReload(t *testing.T) {
	path := writeFile(t, "tokens.yaml", "tokens:\n  - {name: a, sha256: "+sha("one")+", scopes: [read]}\n")
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	get := func(token string) int {
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/streams", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("one") != 200 || get("two") != 401 {
		t.Fatal("the first file is not in force")
	}
	if err := os.WriteFile(path, []byte("tokens:\n  - {name: b, sha256: "+sha("two")+", scopes: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if get("one") != 401 || get("two") != 200 {
		t.Fatal("the reloaded file is not in force")
	}
	if err := os.WriteFile(path, []byte("tokens:\n  - {name: b, sha256: nope, scopes: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err == nil {
		t.Fatal("a bad file reloaded")
	}
	if get("two") != 200 || tokens.Len() != 1 {
		t.Fatal("a bad file replaced the tokens in use")
	}
}

// sampleRequests has one request for each route of the table, on streams of the
// orders token's prefix where the route names a stream.
func sampleRequests() map[string]struct{ method, path, body string } {
	id := "0190c1d2-0000-7000-8000-000000000001"
	return map[string]struct{ method, path, body string }{
		"append":              {"POST", "/v1/streams/Order%241", `{"events":[{"type":"E"}]}`},
		"link":                {"POST", "/v1/streams/Order%242/links", `{"event_ids":["` + id + `"]}`},
		"read_stream":         {"GET", "/v1/streams/Order%241", ""},
		"delete_stream":       {"DELETE", "/v1/streams/Order%249", ""},
		"get_stream_metadata": {"GET", "/v1/streams/Order%241/metadata", ""},
		"set_stream_metadata": {"PUT", "/v1/streams/Order%248/metadata", `{"max_count":5}`},
		"erase_stream":        {"POST", "/v1/streams/Order%247/erase", ""},
		"scavenge":            {"POST", "/v1/admin/scavenge", ""},
		"list_streams":        {"GET", "/v1/streams?prefix=Order%24", ""},
		"read_all":            {"GET", "/v1/all", ""},
		"read_category":       {"GET", "/v1/categories/Order", ""},
		"event":               {"GET", "/v1/events/" + id, ""},
		"subscribe":           {"GET", "/v1/subscribe?stream=Order%241", ""},
		"processes":           {"GET", "/v1/processes", ""},
		"process_list":        {"GET", "/v1/processes/M", ""},
		"process":             {"GET", "/v1/processes/M/1", ""},
		"parked":              {"GET", "/v1/processes/M/parked", ""},
		"retry_command":       {"POST", "/v1/processes/M/1/commands/" + id + "/retry", ""},
		"skip_command":        {"POST", "/v1/processes/M/1/commands/" + id + "/skip", ""},
		"subscriptions":       {"GET", "/v1/subscriptions", ""},
		"subscription":        {"GET", "/v1/subscriptions/billing", ""},
		"retry_event":         {"POST", "/v1/subscriptions/billing/events/" + id + "/retry", ""},
		"skip_event":          {"POST", "/v1/subscriptions/billing/events/" + id + "/skip", ""},
		"routes":              {"GET", "/v1/", ""},
		"openapi":             {"GET", "/v1/openapi.json", ""},
		"stats":               {"GET", "/v1/stats", ""},
		"cluster":             {"GET", "/v1/cluster", ""},
		"cluster_join":        {"POST", "/v1/cluster/nodes", `{"id":"n4","raft_addr":"127.0.0.1:7084"}`},
		"cluster_remove":      {"DELETE", "/v1/cluster/nodes/n4", ""},
		"metrics":             {"GET", "/metrics", ""},
		"healthz":             {"GET", "/healthz", ""},
	}
}

// TestEveryRouteWithEveryScope calls every registered route with no token, an
// unknown one, and each scope: 401 without a known token, 403 when the scope or the
// streams do not reach, and otherwise the route's own answer.
func TestEveryRouteWithEveryScope(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	samples := sampleRequests()
	scopeOf := map[string]Scope{"r-secret": ScopeRead, "w-secret": ScopeWrite, "a-secret": ScopeAdmin, "o-secret": ScopeWrite}
	for _, rt := range e.srv.table {
		sample, ok := samples[rt.name]
		if !ok {
			t.Fatalf("route %s %s has no sample request in this test", rt.method, rt.path)
		}
		if sample.method != rt.method {
			t.Fatalf("sample of %s is a %s", rt.name, sample.method)
		}
		for _, token := range []string{"", "unknown", "r-secret", "w-secret", "a-secret", "o-secret"} {
			t.Run(rt.name+"/"+strings.TrimSuffix(token, "-secret"), func(t *testing.T) {
				status, body := e.call(sample.method, sample.path, sample.body, token, nil)
				var want int
				switch {
				case rt.access.scope == 0:
				case token == "" || token == "unknown":
					want = http.StatusUnauthorized
				case scopeOf[token] < rt.access.scope:
					want = http.StatusForbidden
				case token == "o-secret" && rt.access.target == nil && !rt.access.noData:
					want = http.StatusForbidden // $all, categories, types, processes
				}
				switch {
				case want != 0 && status != want:
					t.Fatalf("status %d, want %d: %s", status, want, body)
				case want == 0 && (status == http.StatusUnauthorized || status == http.StatusForbidden):
					t.Fatalf("status %d, want the route's own answer: %s", status, body)
				}
				if status == http.StatusUnauthorized && !strings.Contains(body, `"error":"unauthorized"`) ||
					status == http.StatusForbidden && !strings.Contains(body, `"error":"forbidden"`) {
					t.Fatalf("refusal without the contract's code: %s", body)
				}
			})
		}
	}
}

// TestRouteScopes pins each route's scope, and whether a token limited to streams may
// call it, to docs/api.md ("Access"), written out here: TestEveryRouteWithEveryScope takes
// them from the route table it tests, so a wrong entry there passes it.
func TestRouteScopes(t *testing.T) {
	type rule struct {
		scope   Scope
		limited bool // a token limited to streams may call it (for its streams)
	}
	const none = Scope(0)
	want := map[string]rule{
		"healthz": {none, false},
		// read: every read, subscriptions, the process and cluster views, metrics.
		"read_stream": {ScopeRead, true}, "get_stream_metadata": {ScopeRead, true},
		"list_streams": {ScopeRead, true}, "subscribe": {ScopeRead, true},
		"read_all": {ScopeRead, false}, "read_category": {ScopeRead, false}, "event": {ScopeRead, false},
		"processes": {ScopeRead, false}, "process_list": {ScopeRead, false}, "parked": {ScopeRead, false},
		"process": {ScopeRead, false}, "subscriptions": {ScopeRead, false}, "subscription": {ScopeRead, false},
		"stats": {ScopeRead, false}, "cluster": {ScopeRead, false}, "metrics": {ScopeRead, false},
		"routes": {ScopeRead, true}, "openapi": {ScopeRead, true}, // they show no stream's data
		// write: append, link, delete, retention settings.
		"append": {ScopeWrite, true}, "link": {ScopeWrite, true}, "delete_stream": {ScopeWrite, true},
		"set_stream_metadata": {ScopeWrite, true},
		// admin: erasure, scavenging, retrying and skipping deliveries, the cluster.
		"erase_stream": {ScopeAdmin, true}, "scavenge": {ScopeAdmin, false},
		"retry_command": {ScopeAdmin, false}, "skip_command": {ScopeAdmin, false},
		"retry_event": {ScopeAdmin, false}, "skip_event": {ScopeAdmin, false},
		"cluster_join": {ScopeAdmin, false}, "cluster_remove": {ScopeAdmin, false},
	}
	e := newEnv(t, Options{})
	seen := map[string]bool{}
	for _, rt := range e.srv.table {
		seen[rt.name] = true
		w, ok := want[rt.name]
		if !ok {
			t.Errorf("route %s (%s %s) is not in this test: add the scope the contract gives it", rt.name, rt.method, rt.path)
			continue
		}
		if got := (rule{rt.access.scope, rt.access.target != nil || rt.access.noData}); got != w {
			t.Errorf("route %s (%s %s): scope %s, limited tokens %v; want %s, %v", rt.name, rt.method, rt.path, got.scope, got.limited, w.scope, w.limited)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("route %s is gone from the table", name)
		}
	}
}

// TestStreamLimitedToken: a token limited to Order$ reads and writes only streams
// under it, by path, subscription and listing prefix.
func TestStreamLimitedToken(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	before := e.store.LastPosition()
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/streams/Customer%241", `{"events":[{"type":"E"}]}`, 403},
		{"POST", "/v1/streams/Customer%241/links", `{"event_ids":["0190c1d2-0000-7000-8000-000000000001"]}`, 403},
		{"DELETE", "/v1/streams/Customer%241", "", 403},
		{"GET", "/v1/streams/Customer%241", "", 403},
		{"GET", "/v1/streams/%24all", "", 403},
		{"GET", "/v1/streams", "", 403},
		{"GET", "/v1/streams?prefix=Ord", "", 403},
		{"GET", "/v1/subscribe?stream=Customer%241", "", 403},
		{"GET", "/v1/subscribe", "", 403},
		{"GET", "/v1/subscribe?types=E", "", 403},
		{"GET", "/v1/all?types=E", "", 403},
		{"GET", "/v1/events/0190c1d2-0000-7000-8000-000000000001", "", 403},
		{"GET", "/v1/categories/Order", "", 403},
		{"GET", "/v1/processes", "", 403},
		{"GET", "/v1/streams?prefix=Order%2412", "", 200},
		{"POST", "/v1/streams/Order%241", `{"events":[{"type":"E"}]}`, 201},
	}
	for _, tt := range tests {
		status, body := e.call(tt.method, tt.path, tt.body, "o-secret", nil)
		if status != tt.status {
			t.Errorf("%s %s: status %d, want %d: %s", tt.method, tt.path, status, tt.status, body)
		}
		if status == 403 && !strings.Contains(body, `limited to streams \"Order$\"`) {
			t.Errorf("%s %s: the refusal does not say why: %s", tt.method, tt.path, body)
		}
	}
	if got := e.store.LastPosition(); got != before+1 {
		t.Fatalf("last position %d, want %d: a refused write wrote", got, before+1)
	}

	// Links: the token may link only events it can read, those in one of its streams.
	// Linking another stream's event into Order$1 would show its data there.
	ctx := context.Background()
	foreign, err := e.store.Append(ctx, "Customer$1", pmd.Any, pmd.EventData{Type: "Secret", Data: map[string]any{"card": "4111"}})
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.store.Append(ctx, "Order$9", pmd.Any, pmd.EventData{Type: "E"})
	if err != nil {
		t.Fatal(err)
	}
	shown, err := e.store.Append(ctx, "Customer$2", pmd.Any, pmd.EventData{Type: "Shown"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Link(ctx, "Order$5", pmd.Any, shown.IDs[0]); err != nil {
		t.Fatal(err)
	}
	before = e.store.LastPosition()
	links := []struct {
		name, id string
		status   int
		body     string
	}{
		{"another stream's event", foreign.IDs[0].String(), 403, "is in none of them"},
		{"an event of its streams", own.IDs[0].String(), 201, `"version"`},
		{"another stream's event linked into one of its streams", shown.IDs[0].String(), 201, `"version"`},
		{"an id not stored", "0190c1d2-0000-7000-8000-000000000009", 404, "event_not_found"},
	}
	for _, tt := range links {
		status, body := e.call("POST", "/v1/streams/Order%241/links", `{"event_ids":["`+tt.id+`"]}`, "o-secret", nil)
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("link %s: %d %s, want %d with %q", tt.name, status, body, tt.status, tt.body)
		}
	}
	if got := e.store.LastPosition(); got != before+2 {
		t.Fatalf("last position %d, want %d: a refused link wrote", got, before+2)
	}
	if status, body := e.call("GET", "/v1/streams/Order%241", "", "o-secret", nil); status != 200 || strings.Contains(body, "4111") {
		t.Fatalf("GET Order$1 with the limited token: %d %s, want 200 without the other stream's data", status, body)
	}
}

// call sends one request with a bearer token (none if empty) and extra headers, and
// returns the status and body.
func (e *env) call(method, path, body, token string, header map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, "" // a subscription: do not wait for its events
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// TestCrossSiteAndRebinding: a page on another site cannot write, read or delete
// through the user's browser, with or without a preflight, and a page on a rebound
// name cannot either; curl-like clients and the daemon's own pages can.
func TestCrossSiteAndRebinding(t *testing.T) {
	e := newEnv(t, Options{AllowOrigins: []string{"https://dash.example"}, AllowHosts: []string{"pmd.internal", "*.example.com"}})
	own := e.ts.URL // http://127.0.0.1:port
	port := own[strings.LastIndex(own, ":")+1:]
	body := `{"events":[{"type":"E"}]}`
	tests := []struct {
		name         string
		method, path string
		header       map[string]string
		status       int
	}{
		{"simple cross-site POST", "POST", "/v1/streams/Victim%241", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403},
		{"cross-site DELETE", "DELETE", "/v1/streams/Victim%241", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site read", "GET", "/v1/all", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site subscribe", "GET", "/v1/subscribe", map[string]string{"Origin": "http://evil.example"}, 403},
		{"opaque origin", "POST", "/v1/streams/Victim%241", map[string]string{"Origin": "null"}, 403},
		{"another port of this host", "POST", "/v1/streams/Victim%241", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"https for an http daemon", "POST", "/v1/streams/Victim%241", map[string]string{"Origin": "https://127.0.0.1:" + port}, 403},
		{"preflight from elsewhere", "OPTIONS", "/v1/streams/Victim%241", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403},
		{"rebound name", "POST", "/v1/streams/Victim%241", map[string]string{"Host": "evil.example:" + port}, 403},
		{"rebound name, same origin", "POST", "/v1/streams/Victim%241", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port}, 403},
		{"rebound name reading", "GET", "/v1/all", map[string]string{"Host": "evil.example"}, 403},
		{"rebound name, the browser page", "GET", "/", map[string]string{"Host": "evil.example"}, 403},
		{"no origin (curl)", "POST", "/v1/streams/Mine%241", nil, 201},
		{"own origin (the browser)", "POST", "/v1/streams/Mine%241", map[string]string{"Origin": own}, 201},
		{"allowed origin", "POST", "/v1/streams/Mine%241", map[string]string{"Origin": "https://dash.example", "Content-Type": "application/json"}, 201},
		{"allowed origin preflight", "OPTIONS", "/v1/streams/Mine%241", map[string]string{"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"}, 204},
		{"localhost", "GET", "/v1/all", map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port}, 200},
		{"a .localhost name", "GET", "/v1/all", map[string]string{"Host": "pmd.localhost:" + port}, 200},
		{"an allowed host", "GET", "/v1/all", map[string]string{"Host": "PMD.internal:" + port}, 200},
		{"an IPv6 literal", "GET", "/v1/all", map[string]string{"Host": "[::1]:" + port}, 200},
		{"one label under a wildcard", "GET", "/v1/all", map[string]string{"Host": "pmd.Example.com.:" + port}, 200},
		{"two labels under a wildcard", "GET", "/v1/all", map[string]string{"Host": "a.pmd.example.com:" + port}, 403},
		{"a wildcard's own domain", "GET", "/v1/all", map[string]string{"Host": "example.com:" + port}, 403},
		{"a name ending like a wildcard's", "GET", "/v1/all", map[string]string{"Host": "evilexample.com:" + port}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.store.LastPosition()
			b := ""
			if tt.method == "POST" {
				b = body
			}
			status, got := e.call(tt.method, tt.path, b, "", tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, got)
			}
			if status == 403 {
				if !strings.Contains(got, `"error":"forbidden"`) {
					t.Fatalf("refusal %s", got)
				}
				if e.store.LastPosition() != before {
					t.Fatal("a refused request wrote")
				}
			}
		})
	}
	// The allowed origin may read the answers; the preflight lets it send a token.
	req, _ := http.NewRequest("OPTIONS", e.ts.URL+"/v1/all", nil)
	req.Header.Set("Origin", "https://dash.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight headers %v", resp.Header)
	}
}

func TestListenCheck(t *testing.T) {
	tcp := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 7070} }
	tests := []struct {
		addr           net.Addr
		auth, insecure bool
		ok             bool
	}{
		{tcp("127.0.0.1"), false, false, true},
		{tcp("127.8.9.1"), false, false, true},
		{tcp("::1"), false, false, true},
		{tcp("0.0.0.0"), false, false, false},
		{tcp("::"), false, false, false},
		{tcp("192.0.2.7"), false, false, false},
		{tcp("0.0.0.0"), true, false, true},
		{tcp("0.0.0.0"), false, true, true},
	}
	for _, tt := range tests {
		err := ListenCheck(tt.addr, tt.auth, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("ListenCheck(%s, auth %v, insecure %v) = %v", tt.addr, tt.auth, tt.insecure, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--auth") {
			t.Errorf("the refusal does not say what to do: %v", err)
		}
	}
}

// TestRequestWithoutHost: an HTTP/1.0 request without a Host header (a load balancer's
// health check) is served: no web page can send one, so it is no rebinding.
func TestRequestWithoutHost(t *testing.T) {
	e := newEnv(t, Options{})
	for _, path := range []string{"/healthz", "/v1/all"} {
		conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without Host: %s %s", path, resp.Status, body)
		}
	}
}

// TestStreamLimitedTokenOnRetention: a token limited to Order$ reads and sets the
// retention only of its streams, and erases only them, even with the admin scope.
func TestStreamLimitedTokenOnRetention(t *testing.T) {
	tokens, err := LoadTokens(writeFile(t, "tokens.yaml", "tokens:\n"+
		"  - {name: orders, sha256: "+sha("o-secret")+", scopes: [write], streams: [\"Order$\"]}\n"+
		"  - {name: orders-admin, sha256: "+sha("oa-secret")+", scopes: [admin], streams: [\"Order$\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	ctx := context.Background()
	for _, s := range []string{"Order$1", "Customer$1"} {
		if _, err := e.store.Append(ctx, s, pmd.Any, pmd.EventData{Type: "E", Data: map[string]any{"secret": s}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		method, path, body, token string
		status                    int
	}{
		{"GET", "/v1/streams/Customer%241/metadata", "", "o-secret", 403},
		{"PUT", "/v1/streams/Customer%241/metadata", `{"max_count":1}`, "o-secret", 403},
		{"POST", "/v1/streams/Customer%241/erase", "", "oa-secret", 403},
		{"PUT", "/v1/streams/Order%241/metadata", `{"max_count":5}`, "o-secret", 200},
		{"GET", "/v1/streams/Order%241/metadata", "", "o-secret", 200},
		{"POST", "/v1/streams/Order%241/erase", "", "oa-secret", 204},
	} {
		status, body := e.call(tt.method, tt.path, tt.body, tt.token, nil)
		if status != tt.status {
			t.Errorf("%s %s: status %d, want %d: %s", tt.method, tt.path, status, tt.status, body)
		}
		if status == 403 && !strings.Contains(body, `limited to streams \"Order$\", not \"Customer$1\"`) {
			t.Errorf("%s %s: the refusal does not say why: %s", tt.method, tt.path, body)
		}
	}
	meta, err := e.store.Retention("Customer$1")
	if err != nil || meta != (pmd.Retention{}) {
		t.Fatalf("Customer$1's retention %+v, %v; want none set", meta, err)
	}
	for ev, err := range e.store.ReadStream(ctx, "Customer$1", pmd.ReadOptions{}) {
		if err != nil || ev.Erased || ev.Data["secret"] != "Customer$1" {
			t.Fatalf("Customer$1's event %+v, %v: a refused erase erased it", ev, err)
		}
	}
}

// TestUnauthorizedSaysBearer: a 401 names the scheme it wants in WWW-Authenticate, as
// RFC 9110 requires of it; a 403 does not.
func TestUnauthorizedSaysBearer(t *testing.T) {
	tokens, err := LoadTokens(testTokenFile(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens})
	for _, tt := range []struct {
		token, want string
		status      int
	}{
		{"", `Bearer realm="pmd"`, 401},
		{"nope", `Bearer realm="pmd", error="invalid_token"`, 401},
		{"o-secret", "", 403},
	} {
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/all", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("WWW-Authenticate") != tt.want {
			t.Errorf("token %q: %d, WWW-Authenticate %q; want %d, %q", tt.token, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tt.status, tt.want)
		}
	}
}

// TestPreflightAllowsEveryMethodOfTheAPI: the CORS preflight of an allowed origin lets
// it send every method a route takes (PUT of a stream's metadata among them).
func TestPreflightAllowsEveryMethodOfTheAPI(t *testing.T) {
	e := newEnv(t, Options{AllowOrigins: []string{"https://dash.example"}})
	for _, rt := range e.srv.table {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			req, _ := http.NewRequest("OPTIONS", e.ts.URL+"/v1/streams/s/metadata", nil)
			req.Header.Set("Origin", "https://dash.example")
			req.Header.Set("Access-Control-Request-Method", rt.method)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			allowed := strings.Split(resp.Header.Get("Access-Control-Allow-Methods"), ", ")
			if resp.StatusCode != http.StatusNoContent || !slices.Contains(allowed, rt.method) {
				t.Fatalf("preflight for %s: %d, Access-Control-Allow-Methods %q", rt.method, resp.StatusCode, allowed)
			}
		})
	}
}

// TestCORSExposesTheAPIsHeaders: a page of an origin given with --allow-origin can
// read the response headers the API tells clients to use (Retry-After, Allow,
// WWW-Authenticate, Pmd-Applied-Index, Location): a browser shows a cross-origin page
// only the CORS-safelisted ones (Content-Type, Content-Length...) unless the answer
// names the others in Access-Control-Expose-Headers. Both the preflight and the
// answers themselves, success or error, name them.
func TestCORSExposesTheAPIsHeaders(t *testing.T) {
	path := writeFile(t, "tokens.yaml", "tokens:\n  - {name: a, sha256: "+sha("one")+", scopes: [admin]}\n")
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Tokens: tokens, AllowOrigins: []string{"https://dash.example"}})
	want := []string{"Retry-After", "Allow", "WWW-Authenticate", "Pmd-Applied-Index", "Location"}
	send := func(method, path, token string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.ts.URL+path, nil)
		req.Header.Set("Origin", "https://dash.example")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tt := range []struct {
		name, method, path, token string
		header                    map[string]string
		status                    int
		carries                   string // a header the answer itself has, exposed
	}{
		{"preflight", "OPTIONS", "/v1/all", "", map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}, 204, ""},
		{"a read", "GET", "/v1/all", "one", nil, 200, ""},
		{"no token", "GET", "/v1/all", "", nil, 401, "WWW-Authenticate"},
		{"another method", "PATCH", "/v1/all", "one", nil, 405, "Allow"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(tt.method, tt.path, tt.token, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://dash.example" {
				t.Fatalf("Access-Control-Allow-Origin %q", got)
			}
			exposed := map[string]bool{}
			for _, v := range resp.Header.Values("Access-Control-Expose-Headers") {
				for _, h := range strings.Split(v, ",") {
					exposed[strings.ToLower(strings.TrimSpace(h))] = true
				}
			}
			for _, h := range want {
				if !exposed[strings.ToLower(h)] {
					t.Errorf("Access-Control-Expose-Headers %q does not name %s", resp.Header.Values("Access-Control-Expose-Headers"), h)
				}
			}
			if tt.carries != "" && resp.Header.Get(tt.carries) == "" {
				t.Errorf("the answer has no %s", tt.carries)
			}
		})
	}
	// Every header the server's own code sets on an answer is one of them, or
	// safelisted, or of CORS itself, or for a proxy: one added later without being
	// exposed fails here.
	others := map[string]bool{"content-type": true, "content-length": true, "cache-control": true, "vary": true, "x-accel-buffering": true}
	for _, h := range want {
		others[strings.ToLower(h)] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	set := regexp.MustCompile(`(?:Header\(\)|\bh)\.(?:Set|Add)\("([^"]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range set.FindAllStringSubmatch(string(src), -1) {
			if h := strings.ToLower(m[1]); !others[h] && !strings.HasPrefix(h, "access-control-") {
				t.Errorf("%s sets the response header %s, which CORS does not expose (exposedHeaders)", f, m[1])
			}
		}
	}
	// An origin not allowed is told nothing more than before: no CORS headers at all.
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/all", nil)
	req.Header.Set("Origin", "https://other.example")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Expose-Headers") != "" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a foreign origin: status %d, headers %v", resp.StatusCode, resp.Header)
	}
}
