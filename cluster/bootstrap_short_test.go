package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// warnings is a slog handler that passes each WARN message on.
type warnings chan string

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	select {
	case w <- r.Message:
	default: // nobody waits for more
	}
	return nil
}
func (w warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnings) WithGroup(string) slog.Handler      { return w }

// TestBootstrapExpectAboveJoinWarns: a new node whose --join names fewer nodes than
// --bootstrap-expect (a template's flags) starts, for it can be added to a cluster that
// exists, but says that it can never form one: it would otherwise wait in silence. This
// node listed under another address is not another node.
func TestBootstrapExpectAboveJoinWarns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	must(t, ln.Close())
	for _, tc := range []struct {
		name     string
		raftAddr string
		join     []string
		most     int
	}{
		// The one other node is listed twice, and nobody answers there.
		{"an address listed twice", "127.0.0.1:0", []string{"127.0.0.1:1", "127.0.0.1:1"}, 2},
		{"this node under another name", fmt.Sprintf("127.0.0.1:%d", port), []string{fmt.Sprintf("localhost:%d", port), "127.0.0.1:1"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
			must(t, err)
			defer s.Close()
			warned := make(warnings, 16)
			n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: tc.raftAddr, HTTPAddr: "127.0.0.1:1",
				Dir: dir, Store: s, Logger: slog.New(warned), Join: tc.join, BootstrapExpect: 3})
			must(t, err)
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			want := fmt.Sprintf("--bootstrap-expect 3, but --join names at most %d nodes, this one included: this node can only be added to a cluster that exists, never form one", tc.most)
			for {
				select {
				case msg := <-warned:
					if strings.Contains(msg, want) {
						return
					}
				case <-ctx.Done():
					t.Fatalf("no warning saying %q within a minute", want)
				}
			}
		})
	}
}
