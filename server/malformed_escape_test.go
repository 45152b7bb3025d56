package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMalformedEscapeIsJSON: a request whose path holds a malformed percent-escape, which
// Go's HTTP server refuses before any handler sees it, is answered with the contract's
// JSON error, 400 bad_request naming the escape, also after other requests on the same
// connection (one with a body among them); what Go refuses for another reason is JSON
// too. It was Go's plain-text "400 Bad Request".
func TestMalformedEscapeIsJSON(t *testing.T) {
	srv := New(openStore(t), Options{Logger: quiet()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, srv, ln, 5*time.Second)

	for _, tt := range []struct {
		name   string
		before []string // requests sent first on the connection, each answered
		line   string
		want   []string // in the message
	}{
		{"first", nil, "GET /v1/streams/a%zz HTTP/1.1", []string{`"%zz"`, "byte 13"}},
		{"at the end", nil, "GET /v1/streams/ab% HTTP/1.1", []string{`"%"`}},
		{"after others", []string{
			"GET /v1/streams/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
			"POST /v1/streams/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 41\r\n\r\n" +
				`{"events":[{"type":"T","data":{"a":1}}]}` + " ",
		}, "GET /v1/streams/b%4?x=1 HTTP/1.1", []string{`"%4"`}},
		{"not an escape", nil, "GET /v1/streams/a b HTTP/1.1", []string{"malformed request"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for _, req := range tt.before {
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("%q: %s %s", req, resp.Status, body)
				}
			}
			if _, err := fmt.Fprintf(c, "%s\r\nHost: 127.0.0.1\r\n\r\n", tt.line); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%q: %s %q %s, want 400 and JSON", tt.line, resp.Status, resp.Header.Get("Content-Type"), raw)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("%q: %v: %s", tt.line, err, raw)
			}
			msg, _ := body["message"].(string)
			if body["error"] != codeBadRequest {
				t.Errorf("%q: %s, want code %s", tt.line, raw, codeBadRequest)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("%q: message %q does not say %s", tt.line, msg, want)
				}
			}
		})
	}
}
