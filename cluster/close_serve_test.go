package cluster

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestCloseStopsACopyToAPeer: a node streaming records to a peer that keeps reading,
// slowly, stops the copy when it is closed (pmd serve's SIGTERM): it streamed them to the
// end, and Close waited for that.
func TestCloseStopsACopyToAPeer(t *testing.T) {
	ctx := context.Background()
	s1, n1, stop1 := startAs(t, t.TempDir(), "n1", Config{})
	_, n2, _ := startAs(t, t.TempDir(), "n2", Config{})
	big := strings.Repeat("x", 10<<10)
	for range 15 {
		events := make([]pmd.EventData, 100)
		for i := range events {
			events[i] = pmd.EventData{Type: "Big", Data: map[string]any{"x": big}}
		}
		_, err := s1.Append(ctx, "Big$1", pmd.Any, events...)
		must(t, err)
	}
	_, br, c, err := n2.call(ctx, n1.Self().RaftAddr, request{Op: "records", From: 1, To: s1.LastPosition()}, time.Minute)
	must(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Time{})
	done := make(chan struct{})
	read := make(chan error, 1)
	go func() { // a peer that keeps reading, 32 KB every 50 ms
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 32<<10)
		for {
			if _, err := io.ReadFull(br, buf); err != nil {
				read <- err
				return
			}
			select {
			case <-tick.C:
			case <-done:
				read <- nil
				return
			}
		}
	}()
	defer close(done)
	closeWithin(t, stop1, 3*time.Second, "the copy to a peer")
}

// TestCloseStopsACheckOfAJoiner: a leader asked to add a node that does not answer (it
// checks it answers first, checkJoiner) stops that check when it is closed: Close waited
// for it, up to joinerWait.
func TestCloseStopsACheckOfAJoiner(t *testing.T) {
	ctx := context.Background()
	_, n1, stop1 := startAs(t, t.TempDir(), "n1", Config{})
	_, n2, _ := startAs(t, t.TempDir(), "n2", Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // read nothing, answer nothing
		}
	}()
	asked := make(chan error, 1)
	go func() {
		_, _, _, err := n2.call(ctx, n1.Self().RaftAddr, request{Op: "join", ID: "x1", RaftAddr: ln.Addr().String()}, time.Minute)
		asked <- err
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the leader does not check the node that asks to join")
	}
	closeWithin(t, stop1, time.Second, "its check of a node that asked to join")
	<-asked
}

// closeWithin calls stop (startAs's: it closes the node, then its store) and fails
// unless it returns within d.
func closeWithin(t *testing.T, stop func(), d time.Duration, what string) {
	t.Helper()
	closed := make(chan struct{})
	start := time.Now()
	go func() { stop(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(d):
		<-closed
		t.Fatalf("Close returned after %v: it waited for %s", time.Since(start).Round(time.Millisecond), what)
	}
}
