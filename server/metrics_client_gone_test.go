package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A scrape whose client hangs up mid-answer fails promhttp's send: that is the client's
// doing, logged at DEBUG as other routes' answers not sent in full are (docs/api.md), and
// it must not take the once-a-minute line from a real collection failure.
func TestScrapeErrorLogClientGone(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := scrapeErrorLog{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), now: func() time.Time { return now }}
	l.Println("error encoding and sending metric family:", errors.Join(errors.New("write tcp 127.0.0.1:7070->127.0.0.1:5000"), syscall.EPIPE))
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || strings.Contains(out, "level=WARN") {
		t.Fatalf("a client gone logged:\n%s", out)
	}
	buf.Reset()
	now = now.Add(time.Second)
	l.Println("error gathering metrics:", "crc32c checksum mismatch")
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "crc32c") {
		t.Fatalf("a collection failure a second after a client went away was not logged:\n%s", out)
	}
}
