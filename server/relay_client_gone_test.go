package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// leaderUnknown is a follower that knows no leader: LeaderHTTP waits until its context
// ends, and says when it has returned.
type leaderUnknown struct {
	follower
	waiting, returned chan struct{}
}

func (n leaderUnknown) LeaderHTTP(ctx context.Context, _ time.Duration) (string, error) {
	n.waiting <- struct{}{}
	<-ctx.Done()
	defer func() { n.returned <- struct{}{} }()
	return "", &pmd.UnavailableError{Cause: fmt.Errorf("no leader: %w", context.Cause(ctx))}
}

// TestRelayClientGoneWhileWaitingForALeader: a client that leaves while its request waits
// on a follower for a leader (a forwarded write, a relayed subscription) is nobody's
// failure: nothing to answer, and no ERROR line saying the request failed.
func TestRelayClientGoneWhileWaitingForALeader(t *testing.T) {
	for _, path := range []string{"/v1/subscribe?consistency=leader", "/v1/streams/Order$1?consistency=leader"} {
		t.Run(path, func(t *testing.T) {
			var mu sync.Mutex
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logs.Write(b)
			}), nil))
			node := leaderUnknown{waiting: make(chan struct{}, 1), returned: make(chan struct{}, 1)}
			srv := New(openStore(t), Options{Logger: logger, Node: node})
			ln := listen(t)
			stop := serveOn(t, srv, ln, time.Minute)
			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			<-node.waiting
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the request was answered, want it cut by the client")
			}
			<-node.returned
			if _, err := stop(); err != nil { // waits for the handler
				t.Fatalf("Serve: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a client gone was logged as an error:\n%s", logs.String())
			}
		})
	}
}
