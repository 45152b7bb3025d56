package engine_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestFlushFailureLoggedOnceAMinute: while the disk is full the flush loop fails every
// FlushInterval (10 s in the daemon); the first failure is logged at ERROR and the next
// ones of the minute are counted, not logged one each as they were, six lines a minute
// for as long as the disk stayed full.
func TestFlushFailureLoggedOnceAMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := damagetest.SmallDisk(t, "4m")
	var logged lockedBuffer
	flushed := make(chan struct{}, 1)
	opts := engine.WithAfterFlush(engine.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil)), NoScrub: true,
		SegmentSize: 256 << 10, FlushInterval: 5 * time.Millisecond}, func() {
		select {
		case flushed <- struct{}{}:
		default:
		}
	})
	e, err := engine.Open(filepath.Join(mnt, "data"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// One event in the log, then in the index once the disk is full: the flushes fail
	// to write it.
	b := engine.NewBatch(e.Index, e.Log)
	r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Event: pmdlog.Event{ID: uuid.New(), Stream: "Order$1", Type: "T"}}
	if err := e.Log.Write([]pmdlog.Record{r}); err != nil {
		t.Fatal(err)
	}
	r.Position = e.Log.LastPosition()
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o640); err == nil {
		t.Fatal("an 8 MiB file fitted on a 4 MiB disk")
	}
	defer os.Remove(filler) // before Close: a store closing on a full disk waits to flush
	if err := engine.ApplyRecord(b, &r, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(b); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for range 6 {
		select {
		case <-flushed:
		case <-deadline:
			t.Fatal("the flush loop did not run")
		}
	}
	if n := strings.Count(logged.String(), `msg="pmd: index flush failed`); n != 1 {
		t.Fatalf("%d lines for the flushes that failed on a full disk, want 1:\n%s", n, logged.String())
	}
	// Space again: the next flush lands and says so, with the failures it did not log,
	// so that a later run of failures starts its own count (it reported this one's).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(logged.String(), `msg="pmd: index flush resumed"`) {
		select {
		case <-flushed:
		case <-deadline:
			t.Fatalf("no line said the flushes resumed once the disk had space:\n%s", logged.String())
		}
	}
	if strings.Contains(logged.String(), "resumed\" suppressed=0") {
		t.Fatalf("the resumed line counts none of the failures not logged:\n%s", logged.String())
	}
}
