package log

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/wal"
)

// TestWriteFailureLoggedOnce: while the disk stays full every Write fails the same way;
// the first failure of a run is logged at ERROR, the next ones of the minute are not
// (clients retrying logged one line each), and once writes resumed a new failure is
// logged again at once.
func TestWriteFailureLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	defer mustClose(t, l)
	full := true
	l.writeBatch = func(w *wal.Log, b *wal.Batch) error {
		if full {
			return &os.PathError{Op: "write", Path: "tail", Err: syscall.ENOSPC}
		}
		return w.WriteBatch(b)
	}
	count := func() int { return strings.Count(buf.String(), `msg="log: write failed`) }
	for range 5 {
		if err := l.Write(genBatch(l.LastPosition(), 1)); err == nil {
			t.Fatal("Write on a full disk succeeded")
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d lines for 5 failed writes in a row, want 1:\n%s", n, buf.String())
	}
	full = false
	if err := l.Write(genBatch(l.LastPosition(), 1)); err != nil {
		t.Fatal(err)
	}
	full = true
	if err := l.Write(genBatch(l.LastPosition(), 1)); err == nil {
		t.Fatal("Write on a full disk succeeded")
	}
	if n := count(); n != 2 {
		t.Fatalf("%d lines after writes resumed and failed again, want 2:\n%s", n, buf.String())
	}
}
