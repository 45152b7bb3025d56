package server

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestReloadEndsRevokedSubscriptions: a subscription lasts as long as its client keeps
// it, days if need be. A reload of the token file that takes its token away, or no longer
// lets the token read what it follows, ends it, as it would refuse the subscription were
// it opened now, telling the client why with an SSE error event of the code its
// reconnect gets (it ended without one, and a client took the end for a broken
// connection); a reload that still allows it, or a file that does not load, leaves it
// running.
func TestReloadEndsRevokedSubscriptions(t *testing.T) {
	const reader, orders = "r-secret", "o-secret"
	file := func(readerLine, ordersStreams string) string {
		return "tokens:\n" + readerLine +
			"  - {name: orders, sha256: " + sha(orders) + ", scopes: [read], streams: [" + ordersStreams + "]}\n"
	}
	readerLine := "  - {name: reader, sha256: " + sha(reader) + ", scopes: [read]}\n"
	start := file(readerLine, `"Order$"`)
	tests := []struct {
		name, token, path string
		reload            string // the file's new contents
		ends              string // the code of the error event it ends with; "" for none
	}{
		{"token removed", reader, "/v1/subscribe", file("", `"Order$"`), codeUnauthorized},
		{"stream no longer among its prefixes", orders, "/v1/subscribe?stream=Order%241", file(readerLine, `"Customer$"`), codeForbidden},
		{"token removed, following one stream", reader, "/v1/subscribe?stream=Order%241", file("", `"Order$"`), codeUnauthorized},
		{"another token added", reader, "/v1/subscribe", start + "  - {name: new, sha256: " + sha("n-secret") + ", scopes: [read]}\n", ""},
		{"prefixes that still reach the stream", orders, "/v1/subscribe?stream=Order%241", file(readerLine, `"Customer$", "Order"`), ""},
		{"a file that does not load", reader, "/v1/subscribe", "tokens: [\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "tokens.yaml", start)
			tokens, err := LoadTokens(path)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, Options{Tokens: tokens, Heartbeat: time.Hour})
			lines := subscribeWith(t, e.ts.URL+tt.path, tt.token)

			if err := os.WriteFile(path, []byte(tt.reload), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tokens.Reload(); (err != nil) != strings.HasPrefix(tt.reload, "tokens: [") {
				t.Fatalf("reload: %v", err)
			}
			if tt.ends == "" {
				// An event written after the reload: the subscription still allowed gets it.
				if _, err := e.store.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "AfterReload"}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.After(10 * time.Second)
			var msg, last []string // the lines of the SSE message being read, and of the last one
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						if tt.ends == "" {
							t.Fatal("the subscription ended, though the token still allows it")
						}
						want := []string{"event: error", `data: {"error":"` + tt.ends + `","message":"the reloaded tokens no longer allow this: `}
						if len(last) != 2 || last[0] != want[0] || !strings.HasPrefix(last[1], want[1]) {
							t.Fatalf("the subscription ended with %q; want an error event starting %q", last, want)
						}
						return
					}
					if line != "" {
						msg = append(msg, line)
					} else if msg != nil {
						last, msg = msg, nil
					}
					if tt.ends == "" && strings.Contains(line, "AfterReload") {
						return
					}
				case <-deadline:
					if tt.ends != "" {
						t.Fatal("the subscription of a token the reload no longer allows did not end within 10s")
					}
					t.Fatal("the event written after the reload did not come within 10s")
				}
			}
		})
	}
}

// TestReloadEndsRelayedSubscription: a subscription that a cluster node relays from its
// leader (consistency=leader) and that the node's reload of its tokens no longer allows
// ends with the same error event as one the node serves itself: the relay was cut with
// no word.
func TestReloadEndsRelayedSubscription(t *testing.T) {
	const reader = "r-secret"
	path := writeFile(t, "tokens.yaml", "tokens:\n  - {name: reader, sha256: "+sha(reader)+", scopes: [read]}\n")
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	leader := newEnv(t, Options{Heartbeat: time.Hour})
	node := newEnv(t, Options{Tokens: tokens, Heartbeat: time.Hour, Node: follower{leader: strings.TrimPrefix(leader.ts.URL, "http://")}})
	lines := subscribeWith(t, node.ts.URL+"/v1/subscribe?consistency=leader", reader)
	if err := os.WriteFile(path, []byte("tokens:\n  - {name: other, sha256: "+sha("o-secret")+", scopes: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	var msg, last []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				want := []string{"event: error", `data: {"error":"unauthorized","message":"the reloaded tokens no longer allow this: `}
				if len(last) != 2 || last[0] != want[0] || !strings.HasPrefix(last[1], want[1]) {
					t.Fatalf("the relayed subscription ended with %q; want an error event starting %q", last, want)
				}
				return
			}
			if line != "" {
				msg = append(msg, line)
			} else if msg != nil {
				last, msg = msg, nil
			}
		case <-deadline:
			t.Fatal("the relayed subscription of a token the reload no longer allows did not end within 10s")
		}
	}
}

// subscribeWith opens an SSE subscription at url with token and returns its lines,
// closed when the server ends the stream.
func subscribeWith(t *testing.T, url, token string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe %s: %s", url, resp.Status)
	}
	lines := make(chan string, 64)
	sc := bufio.NewScanner(resp.Body)
	// The first line (retry:) says the subscription is open.
	if !sc.Scan() {
		t.Fatal(fmt.Errorf("subscribe %s: the stream ended at once: %v", url, sc.Err()))
	}
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}
