package engine_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// lockedBuffer is a log's output, read once the writer is done.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestVersionJumpAfterASkippedRecordIsSaid: a cluster node keeps index.skipped (its log
// grows by copies), so that its replays let any stream's versions jump, not only a
// skipped record's stream: each jump let through is logged, naming the stream and the
// versions, or one that is no skipped record's would go unseen.
func TestVersionJumpAfterASkippedRecordIsSaid(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, func(s *pmd.Store) { appendTo(t, s, "X$1", 1) })
	if err := os.Mkdir(filepath.Join(dir, engine.RaftDir), 0o750); err != nil {
		t.Fatal(err)
	}
	opts := engine.Options{NoScrub: true, SegmentSize: segmentSize, Logger: quiet()}
	writeStrayVersion(t, dir, opts)
	if err := os.WriteFile(filepath.Join(dir, engine.SkippedFile), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open of a cluster node with %s: %v", engine.SkippedFile, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	want := `level=WARN msg="pmd: a stream's versions jump after a skipped record (damaged, or removed by a scavenge): the versions in between are gone" stream=X$1 from=1 to=5`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("the log says\n%s\nwant a line with\n%s", logs.String(), want)
	}
}
