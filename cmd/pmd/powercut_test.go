package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/powercut"
)

// TestServePowerCut cuts the power under pmd serve while 8 clients append: its data
// directory is on a FUSE disk that then loses every byte not fsynced (internal/powercut),
// which SIGKILL never shows. After each of three cuts and a restart, every acknowledged
// append is in $all, once. With --no-sync the test fails: acknowledged appends are lost.
func TestServePowerCut(t *testing.T) {
	bin := pmdBinary(t)
	dir := t.TempDir()
	disk, err := powercut.Mount(t.TempDir(), dir)
	if err != nil {
		t.Skipf("no power cuts here: %v", err)
	}
	t.Cleanup(func() { // after startDaemon's, which kill the daemons
		if err := disk.Unmount(); err != nil {
			t.Error(err)
		}
	})
	// 2 KiB events: each round fills more than a 1 MiB segment, so that new segments,
	// whose names must be durable too, are made under the cut.
	pad := map[string]any{"pad": strings.Repeat("p", 2<<10)}
	acked := map[uuid.UUID]bool{}
	var mu sync.Mutex
	for round := range 3 {
		d := startDaemon(t, bin, "--data", dir, "--scavenge-every", "0")
		c := d.client(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // the writers stop on a failure too
		enough := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		n := 0
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					id := uuid.New()
					if _, err := c.Append(ctx, fmt.Sprintf("Cut$%d", w), pmd.Any, pmd.EventData{ID: id, Type: "T", Data: pad}); err != nil {
						continue // not acknowledged: it may or may not be there
					}
					mu.Lock()
					acked[id] = true
					if n++; n == 500 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}()
		}
		select {
		case <-enough:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: only %d appends acknowledged in 2 minutes", round, n)
		}
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		cancel()
		wg.Wait()
		if err := disk.Cut(); err != nil {
			t.Fatal(err)
		}

		d = startDaemon(t, bin, "--data", dir, "--scavenge-every", "0")
		got := map[uuid.UUID]int{}
		var from uint64
		for {
			page, err := d.client(t).ReadAll(context.Background(), pmd.ReadOptions{From: from, Limit: 1000})
			if err != nil {
				t.Fatalf("round %d: read $all after the cut: %v", round, err)
			}
			for _, e := range page.Events {
				got[e.ID]++
			}
			if page.Next == nil {
				break
			}
			from = *page.Next
		}
		mu.Lock()
		for id := range acked {
			if got[id] != 1 {
				t.Fatalf("round %d: acknowledged append %s is in $all %d times after the power cut", round, id, got[id])
			}
		}
		t.Logf("round %d: %d acknowledged appends, all there after the power cut; $all holds %d", round, len(acked), len(got))
		mu.Unlock()
		if err := d.stop(t, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
}
