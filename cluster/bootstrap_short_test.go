package cluster

import (
	"context"
	"log/slog"
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
// exists, but says that it can never form one: it would otherwise wait in silence.
func TestBootstrapExpectAboveJoinWarns(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	defer s.Close()
	warned := make(warnings, 16)
	// The one other node is listed twice, and nobody answers there.
	n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1",
		Dir: dir, Store: s, Logger: slog.New(warned), Join: []string{"127.0.0.1:1", "127.0.0.1:1"}, BootstrapExpect: 3})
	must(t, err)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := "--bootstrap-expect 3, but --join names at most 2 nodes, this one included: this node can only be added to a cluster that exists, never form one"
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
}
