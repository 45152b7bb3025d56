package cluster_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/internal/damagetest"
	"github.com/pmd-dev/pmd/internal/powercut"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// TestClusterPowerCutInsideAnEntry cuts the power under a follower so that its store
// keeps only the first write of a Raft entry that holds several (cluster/FORMAT.md, kind
// 3): concurrent writers make the leader put the writes that come while an entry is in
// Raft into one, and the follower, killed with SIGKILL while they write, loses every
// byte of its store's log after that first write's records, as a power cut may when the
// kernel wrote back part of the unsynced tail (at least what was fsynced:
// powercut.CutKeeping). Its Raft log holds the entry (fsynced before the leader
// acknowledged it), and the store's last commit record says (index, slot 0): restarted,
// the node must apply the entry's other writes, once each, and not take the entry for
// applied. Every acknowledged write is then in $all once, and $all is the same on every
// node. With the store skipping by Raft index alone (no slot), or the node not handing
// the entry at the store's Applied to it again at start (fsm.resume), the follower lacks
// the entry's other writes and never converges.
func TestClusterPowerCutInsideAnEntry(t *testing.T) {
	c := newNodes(t, 3)
	disks, backing := mountPowerCut(t, c)
	for i := range c.nodes {
		c.start(i)
	}
	lead := c.leader()
	f := (lead + 1) % len(c.nodes)

	var mu sync.Mutex
	acked := map[string]bool{}
	// A kill may land just after the follower synced its store's log (before an index
	// flush or a Raft snapshot), with no entry of several writes after it left to cut
	// inside: then the follower is started again and killed again.
	for attempt := 1; ; attempt++ {
		writeThenKill(t, c, lead, f, &mu, acked)
		cut, ok := cutInsideLastEntry(t, disks[f], backing[f])
		if ok {
			t.Logf("attempt %d: %s", attempt, cut)
			break
		}
		if attempt == 3 {
			t.Fatalf("in %d attempts no kill left an entry of several writes in the unsynced tail of %s's log: %s", attempt, c.nodes[f].id, cut)
		}
		t.Logf("attempt %d: %s; again", attempt, cut)
		if err := disks[f].Cut(); err != nil {
			t.Fatal(err)
		}
		c.start(f)
		c.converged(time.Minute)
	}

	c.start(f)
	all := c.converged(time.Minute)
	got := map[string]int{}
	for _, e := range all {
		got[e[strings.IndexByte(e, ':')+1:]]++
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if got[id] != 1 {
			t.Fatalf("acknowledged event %s is in $all %d times after the cut", id, got[id])
		}
	}
	t.Logf("%d acknowledged writes, all there once; $all holds %d on every node", len(acked), len(all))
}

// writeThenKill appends through node lead from 16 concurrent writers, noting each
// acknowledged event's id in acked, and kills node f with SIGKILL once 400 more are
// acknowledged, the writes still going; they stop then.
func writeThenKill(t *testing.T, c *tcluster, lead, f int, mu *sync.Mutex, acked map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	n := 0
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id := uuid.NewString()
				st, _, err := c.append(lead, fmt.Sprintf("Slot$%d", w), "any", id)
				if err != nil || st != http.StatusCreated {
					continue // not acknowledged: it may or may not be there
				}
				mu.Lock()
				acked[id] = true
				if n++; n == 400 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		cancel()
		wg.Wait()
		t.Fatalf("only %d writes acknowledged in 2 minutes", n)
	}
	c.kill(f)
	cancel()
	wg.Wait()
}

// cutInsideLastEntry finds, in the log of the killed node whose disk is d (backing its
// files), the last Raft entry of several writes, and cuts the power keeping the log up
// to the records of that entry's first write in it: the entry's other writes, and all
// after them, are gone. It fails the test if the log holds no entry of several writes
// (the leader made none). It cuts nothing and returns false when that entry is not in
// the unsynced part of the log's last segment, where a power cut could cut it. It
// returns what it did.
func cutInsideLastEntry(t *testing.T, d *powercut.Disk, backing string) (string, bool) {
	t.Helper()
	l, err := pmdlog.Open(filepath.Join(backing, "log"), pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	tail := segs[len(segs)-1]
	// Each write of a replicated entry ends with a commit record carrying the entry's
	// Raft index and the write's slot in it (log/FORMAT.md, the slot flag).
	type entry struct {
		first  uint64 // the position of the entry's first commit record
		writes int
	}
	entries := map[uint64]*entry{}
	var last uint64 // the greatest Raft index of an entry of several writes
	err = l.Scan(context.Background(), 1, func(r pmdlog.Record) error {
		if !r.Commit || r.Applied == 0 {
			return nil
		}
		e := entries[r.Applied]
		if e == nil {
			e = &entry{first: r.Position}
			entries[r.Applied] = e
		}
		if e.writes++; e.writes > 1 {
			last = r.Applied
		}
		return nil
	})
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if last == 0 {
		t.Fatalf("of %d Raft entries in the follower's log, none holds more than one write: the leader put each write in an entry of its own", len(entries))
	}
	multi := 0
	for _, e := range entries {
		if e.writes > 1 {
			multi++
		}
	}
	e := entries[last]
	if e.first < tail.First {
		return fmt.Sprintf("entry %d, the last of several writes (%d of %d entries), is not in the log's last segment", last, multi, len(entries)), false
	}
	rel := filepath.Join("log", filepath.Base(tail.Path))
	synced, err := d.Synced(rel)
	if err != nil {
		t.Fatal(err)
	}
	end := damagetest.EndOf(t, tail.Path, e.first)
	if end < synced {
		return fmt.Sprintf("entry %d, the last of several writes (%d of %d entries), ends its first write at byte %d of %s, below the %d bytes fsynced", last, multi, len(entries), end, rel, synced), false
	}
	if err := d.CutKeeping(map[string]int64{rel: end}); err != nil {
		t.Fatal(err)
	}
	// The store now ends with the entry's first write.
	l, err = pmdlog.Open(filepath.Join(backing, "log"), pmdlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.LastPosition(); got != e.first {
		t.Fatalf("after the cut the log ends at position %d, want %d", got, e.first)
	}
	return fmt.Sprintf("cut %s at byte %d (%d fsynced) inside entry %d of %d writes, the last of several (%d of %d entries)", rel, end, synced, last, e.writes, multi, len(entries)), true
}
