package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAppendBytesCounted: pmd_append_bytes_total counts the bytes of every append body
// accepted, whether it came with a Content-Length or chunked (which has none: it counted
// 0 for those).
func TestAppendBytesCounted(t *testing.T) {
	const body = `{"events":[{"type":"A","data":{"x":1}}]}`
	for _, tt := range []struct {
		name string
		body func() io.Reader
	}{
		{"with a length", func() io.Reader { return strings.NewReader(body) }},
		{"chunked", func() io.Reader { return onlyReader{strings.NewReader(body)} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			req, err := http.NewRequest("POST", e.ts.URL+"/v1/streams/s", tt.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("append: status %d", resp.StatusCode)
			}
			m := string(e.do("GET", "/metrics", nil).must(t, http.StatusOK).raw)
			if want := fmt.Sprintf("\npmd_append_bytes_total %d\n", len(body)); !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
			}
		})
	}
}
