package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDamageKeptByTheLogIsLoggedWhenOpenFailsAfterIt: a damaged record the log's open
// keeps is logged (once) even when Open fails after the log opened, here while it fills
// the positions of records the synced log lost: the log no longer logs it itself, so an
// Open that returned before noting it would leave it unlogged.
func TestDamageKeptByTheLogIsLoggedWhenOpenFailsAfterIt(t *testing.T) {
	dir, opts, e := openNew(t, false)
	appendEvents(t, e, "A-1", 4, true)
	const marker = "MARKER-DAMAGED-RECORD"
	b := NewBatch(e.Index, e.Log)
	st, err := b.Stream("A-1")
	if err != nil {
		t.Fatal(err)
	}
	r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true,
		Event: pmdlog.Event{ID: uuid.New(), Stream: "A-1", Version: st.Next, Type: marker}}
	if err := e.Log.Write([]pmdlog.Record{r}); err != nil {
		t.Fatal(err)
	}
	r.Position = e.Log.LastPosition()
	if err := ApplyRecord(b, &r, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(b); err != nil {
		t.Fatal(err)
	}
	appendEvents(t, e, "A-1", 5, true)
	size := e.Log.Segments()[0].Size
	appendEvents(t, e, "A-1", 3, true)
	seg := e.Log.Segments()[0].Path
	if err := e.Close(); err != nil { // the index is flushed past the log's end to come
		t.Fatal(err)
	}
	if err := os.Truncate(seg, size); err != nil { // the last 3 records lost
		t.Fatal(err)
	}
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("%s not in %s", marker, seg)
	}
	data[i+len(marker)/2] ^= 0x08
	if err := os.WriteFile(seg, data, 0o640); err != nil {
		t.Fatal(err)
	}

	var logged syncBuffer
	crashing := opts
	crashing.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	errCrash := errors.New("crash")
	crashing.afterVoid = func() error { return errCrash }
	if _, err := Open(dir, crashing); !errors.Is(err, errCrash) {
		t.Fatalf("Open stopped with %v, want the simulated crash", err)
	}
	pos := fmt.Sprintf("position=%d", r.Position)
	var lines []string
	for l := range strings.Lines(logged.String()) {
		if strings.Contains(l, "damaged log record") && strings.Contains(l, pos) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d log lines report the damaged record at %s, want 1; the log:\n%s", len(lines), pos, logged.String())
	}
}
