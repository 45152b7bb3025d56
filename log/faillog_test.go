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

// TestWriteFailureLoggedPerCause: a run of failures whose cause changes (a full disk,
// then an I/O error) logs the new cause at once, not a minute later; the failures held
// back are reported on "writes resumed" when the run ends, not lost when the next run
// starts: 5 failures, a success, a failure reported suppressed=0 twice, 4 failures
// nowhere.
func TestWriteFailureLoggedPerCause(t *testing.T) {
	var buf bytes.Buffer
	l := mustOpen(t, t.TempDir(), Options{NoSync: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	defer mustClose(t, l)
	var fail error
	l.writeBatch = func(w *wal.Log, b *wal.Batch) error {
		if fail != nil {
			return &os.PathError{Op: "write", Path: "tail", Err: fail}
		}
		return w.WriteBatch(b)
	}
	write := func(err error) {
		t.Helper()
		fail = err
		if werr := l.Write(genBatch(l.LastPosition(), 1)); (werr == nil) != (err == nil) {
			t.Fatalf("Write failing with %v: %v", err, werr)
		}
	}
	count := func(s string) int { return strings.Count(buf.String(), s) }

	for range 5 {
		write(syscall.ENOSPC)
	}
	write(nil)
	if !strings.Contains(buf.String(), `msg="log: writes resumed"`) || !strings.Contains(buf.String(), "suppressed=4") {
		t.Fatalf("writes resumed after 5 failures, 1 logged, want suppressed=4 on its line:\n%s", buf.String())
	}
	buf.Reset()
	write(syscall.ENOSPC)
	write(syscall.EIO)
	write(syscall.EIO)
	if n := count("no space left on device"); n != 1 {
		t.Errorf("%d lines of a full disk in a new run, want 1:\n%s", n, buf.String())
	}
	if n := count("input/output error"); n != 1 {
		t.Errorf("%d lines of an I/O error after a full disk in one run, want 1:\n%s", n, buf.String())
	}
}
