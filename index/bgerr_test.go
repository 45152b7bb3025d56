package index

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestBackgroundErrorsAreDeduplicated: pebble retries a failing compaction at once, so
// one damaged table can raise the same background error dozens of times in a few
// milliseconds; it is logged once a minute, with how many repeats were left out, and a
// different error is logged at once.
func TestBackgroundErrorsAreDeduplicated(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	b := &bgErrors{logger: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	same := errors.New("pebble: corruption in table 000004")
	for range 39 {
		b.report(same)
	}
	b.report(errors.New("pebble: another failure"))
	now = now.Add(2 * time.Minute)
	b.report(same)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "000004") || !strings.Contains(lines[1], "another") ||
		!strings.Contains(lines[2], "000004") || !strings.Contains(lines[2], "suppressed=38") {
		t.Fatalf("unexpected lines:\n%s", buf.String())
	}
}
