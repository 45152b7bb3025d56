package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSubscribeHeadAnswersAndEnds: a GET route answers HEAD as well, with the GET's
// header and no body. HEAD /v1/subscribe got the header and then held a subscription
// open, sending nothing (a HEAD has no body) and ending never: the connection answered
// no later request, and each such probe kept a subscription until its client hung up.
func TestSubscribeHeadAnswersAndEnds(t *testing.T) {
	e := newEnv(t, Options{})
	for _, path := range []string{"/v1/subscribe", "/v1/subscribe?stream=Order%241", "/v1/subscribe?category=Order"} {
		conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The deadline only fails the test: the answers come at once.
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		host := e.ts.Listener.Addr().String()
		fmt.Fprintf(conn, "HEAD %s HTTP/1.1\r\nHost: %s\r\n\r\nGET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", path, host, host)
		rd := bufio.NewReader(conn)
		head, err := http.ReadResponse(rd, &http.Request{Method: http.MethodHead})
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		head.Body.Close()
		if head.StatusCode != http.StatusOK || head.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("HEAD %s: %s, Content-Type %q; want 200 and text/event-stream", path, head.Status, head.Header.Get("Content-Type"))
		}
		next, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("the request after HEAD %s on its connection: %v", path, err)
		}
		next.Body.Close()
		if next.StatusCode != http.StatusOK {
			t.Fatalf("the request after HEAD %s: %s", path, next.Status)
		}
	}
}
