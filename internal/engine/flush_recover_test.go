package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/internal/engine"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestIdleStoreRecoversFromAFullDisk: a store whose log writes failed on a full disk, and
// to which nothing is written any more (a load balancer took the degraded node out), is
// healthy again once space is freed, with no Sync and no write of its callers: the flush
// loop syncs the failed log every FlushInterval, and that sync's probe write shows the disk
// takes writes again. While the disk is still full, those syncs leave it failed.
func TestIdleStoreRecoversFromAFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	mnt := damagetest.SmallDisk(t, "4m")
	flushed := make(chan struct{}, 1)
	opts := engine.WithAfterFlush(engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoScrub: true,
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
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o640); err != nil {
		t.Fatal(err)
	}
	// Fill the disk with log records; the index takes none of them, so that it stays
	// as idle as the rest of the store.
	for i := 0; ; i++ {
		if i > 100_000 {
			t.Fatal("the file system never filled up")
		}
		r := pmdlog.Record{Kind: pmdlog.KindEvent, Commit: true, Event: pmdlog.Event{ID: uuid.New(), Stream: "Full$1",
			Version: uint64(i), Type: "T", Data: []byte(strings.Repeat("x", 500))}}
		if err = e.Log.Write([]pmdlog.Record{r}); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || e.Log.Err() == nil {
		t.Fatalf("write on a full disk: %v, log error %v; want ENOSPC, and the log failed", err, e.Log.Err())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// awaitFlushes waits for n runs of the flush loop that start after the call.
	awaitFlushes := func(n int) {
		t.Helper()
		select {
		case <-flushed: // may have run before the call
		default:
		}
		for range n + 1 {
			select {
			case <-flushed:
			case <-ctx.Done():
				t.Fatal("the flush loop did not run")
			}
		}
	}
	awaitFlushes(2)
	if p := e.Problems(); len(p) == 0 {
		t.Fatal("Problems() is empty while the disk is still full")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	awaitFlushes(1)
	if p := e.Problems(); len(p) != 0 {
		t.Fatalf("Problems() = %q after space was freed and the flush loop ran, with no Sync or write", p)
	}
}
