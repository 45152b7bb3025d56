package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestScrapeErrorLogField: a failed collection names its error under err, the key of
// every other line of the daemon that carries one, so that one grep (err=) finds them
// all; it was error=.
func TestScrapeErrorLogField(t *testing.T) {
	for _, c := range []struct {
		name string
		line []any
	}{
		{"collection failed", []any{"error gathering metrics:", "crc32c checksum mismatch"}},
		{"client gone", []any{"error encoding and sending metric family:", "broken pipe"}},
	} {
		var buf bytes.Buffer
		l := scrapeErrorLog{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), now: func() time.Time { return time.Unix(1000, 0) }}
		l.Println(c.line...)
		if out := buf.String(); !strings.Contains(out, ` err="`) || strings.Contains(out, " error=") {
			t.Errorf("%s: logged %q, want the error under err", c.name, out)
		}
	}
}
