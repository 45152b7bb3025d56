package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// TestWebhookErrorHoldsNoControlCharacters: the error of a failed attempt quotes the
// start of the receiver's answer, which the receiver chooses. It is recorded, shown by
// the API and printed by pmd subscriptions, pmd parked and pmd process in a terminal:
// an escape sequence in it (ESC[2J clears the screen, others retitle the window or
// rewrite what was printed) reached the operator's terminal as is, and a line break
// broke the tables. Control characters are shown as spaces; the text around them stays.
func TestWebhookErrorHoldsNoControlCharacters(t *testing.T) {
	for _, tc := range []struct {
		name, status, body, want string
	}{
		{"escapes and line breaks", "500 Internal Server Error", "bad\x1b[31mRED\x1b[0m\r\nline2\x07\tend", "answered 500 Internal Server Error: bad [31mRED [0m  line2  end"},
		{"C1 control", "500 Internal Server Error", "a\u009bb", "answered 500 Internal Server Error: a b"},
		{"in the status line", "503 Down\x1b[2J", "", "answered 503 Down [2J"},
		{"in a redirect's status line", "302 Found\x1b]0;pwned\x07\x1b[2J\r\nLocation: /x", "", "answered 302 Found ]0;pwned  [2J, a redirect to http://"},
		{"plain", "500 Internal Server Error", "try later", "answered 500 Internal Server Error: try later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawReceiver(t, fmt.Sprintf("HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", tc.status, len(tc.body), tc.body))
			for name, deliver := range map[string]func() error{
				"command": func() error {
					return NewWebhooks(nil, 0).Deliver(context.Background(), url, WebhookCommand{ID: "c1", Type: "T", Manager: "M"})
				},
				"event": func() error {
					return NewEventWebhooks(nil, 0).Deliver(context.Background(), url, WebhookEvent{Subscription: "billing"})
				},
			} {
				err := deliver()
				if err == nil {
					t.Fatalf("%s: a 500 delivered", name)
				}
				if i := strings.IndexFunc(err.Error(), unicode.IsControl); i >= 0 {
					t.Errorf("%s: error %q holds a control character at byte %d", name, err, i)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %q, want it to say %q", name, err, tc.want)
				}
			}
		})
	}
}

// rawReceiver serves answer, as written, to every connection until the test ends, and
// returns its URL: net/http's server would not write a status line of the test's.
func rawReceiver(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				// The request is read before the answer, so that the client does not
				// see its write refused by a connection closed under it.
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
					_, _ = io.WriteString(conn, answer)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}
