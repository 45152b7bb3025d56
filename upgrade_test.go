package pmd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// fixtureWant is what the version that wrote a testdata fixture read back from it.
type fixtureWant struct {
	Streams map[string][]string `json:"streams"`
	All     []string            `json:"all"`
	Caused  map[string][]string `json:"caused"`
}

// openFixture copies the data directory of testdata/<name> to a temporary directory and
// returns what must be read from it, and how to open it with its log lines in logs.
func openFixture(t *testing.T, name string, logs *lockedBuffer) (dir string, want fixtureWant, open func() *pmd.Store) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	// The fixtures' $all and causations were taken when the events of deleted streams
	// stayed in $all. Since retention they are dead when no stream shows them: they are
	// the events that no stream of the fixture lists.
	live := map[string]bool{}
	for _, ids := range want.Streams {
		for _, id := range ids {
			live[id] = true
		}
	}
	want.All = slices.DeleteFunc(want.All, func(id string) bool { return !live[id] })
	for parent, children := range want.Caused {
		if children = slices.DeleteFunc(children, func(id string) bool { return !live[id] }); len(children) == 0 {
			children = nil
		}
		want.Caused[parent] = children
	}
	dir = t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name, "data"))); err != nil {
		t.Fatal(err)
	}
	open = func() *pmd.Store {
		s, err := pmd.Open(dir, pmd.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), SegmentSize: 8 << 10})
		if err != nil {
			t.Fatalf("open the %s fixture: %v", name, err)
		}
		return s
	}
	return dir, want, open
}

// checkFixture checks that s reads what want says: $all, what each event caused, and
// every stream.
func checkFixture(t *testing.T, s *pmd.Store, want fixtureWant) {
	t.Helper()
	ctx := context.Background()
	var all []string
	for _, e := range readAll(t, s, pmd.ReadOptions{}) {
		all = append(all, e.ID.String())
		caused, err := s.Caused(ctx, e.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range caused {
			got = append(got, c.ID.String())
		}
		if !reflect.DeepEqual(got, want.Caused[e.ID.String()]) {
			t.Fatalf("Caused(%s) = %v, want %v", e.ID, got, want.Caused[e.ID.String()])
		}
	}
	if !reflect.DeepEqual(all, want.All) {
		t.Fatalf("$all holds %d events, want the %d written", len(all), len(want.All))
	}
	names := streams(t, s, "", "", 1000)
	if len(names) != len(want.Streams) {
		t.Fatalf("%d streams, want %d", len(names), len(want.Streams))
	}
	for _, info := range names {
		events, err := readStream(t, s, info.Name, pmd.ReadOptions{})
		if err != nil && !errors.Is(err, pmd.ErrStreamNotFound) {
			t.Fatal(err)
		}
		got := []string{}
		for _, e := range events {
			got = append(got, e.ID.String())
		}
		if !reflect.DeepEqual(got, want.Streams[info.Name]) {
			t.Fatalf("stream %s = %v, want %v", info.Name, got, want.Streams[info.Name])
		}
	}
}

// reopenUpgraded closes s, an upgraded store, and opens it again (closed at the test's
// end), failing if that open upgrades anything again.
func reopenUpgraded(t *testing.T, s *pmd.Store, logs *lockedBuffer, open func() *pmd.Store) *pmd.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s = open()
	t.Cleanup(func() { s.Close() })
	if strings.Contains(logs.String(), "upgrading") || strings.Contains(logs.String(), "upgraded") ||
		strings.Contains(logs.String(), "offsets files into") {
		t.Fatalf("a second open upgrades again:\n%s", logs.String())
	}
	return s
}

// checkFormat fails unless the FORMAT file of the data directory dir says format v.
func checkFormat(t *testing.T, dir string, v int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
	if want := fmt.Sprintf("pmd data directory format %d\n", v); err != nil || string(b) != want {
		t.Fatalf("FORMAT = %q (%v), want %q", b, err, want)
	}
}

// checkUpgradedFrom2 fails unless the open whose log lines are logs upgraded the data
// directory dir from format 2 to format 5, saying so and naming the releases that refuse
// it now: those that read format 2, 3 or 4, not every older one (a release of format 1 never
// reads FORMAT).
func checkUpgradedFrom2(t *testing.T, dir string, logs *lockedBuffer) {
	t.Helper()
	const line = "upgraded the data directory from format 2 to format 5: releases of pmd that read data directory format 2, 3 or 4 refuse it from now on"
	if !strings.Contains(logs.String(), line) {
		t.Fatalf("the upgrade to format 5 is not logged as %q:\n%s", line, logs.String())
	}
	checkFormat(t, dir, 5)
}

// TestOpenUpgradesFormat1 opens a data directory written by the last version whose
// index lived in memory (testdata/format1): the store upgrades it on first open, with
// progress logged, and reads back exactly what that version read.
func TestOpenUpgradesFormat1(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "format1", &logs)
	s := open()
	if !strings.Contains(logs.String(), "upgrading the data directory from format 1") ||
		!strings.Contains(logs.String(), "upgraded the data directory to format 5") {
		t.Fatalf("the upgrade is not logged:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "index.ckpt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("index.ckpt is still there after the upgrade (%v)", err)
	}
	checkFormat(t, dir, 5)
	checkFixture(t, s, want)
	// It goes on where the old version stopped, and stays upgraded.
	mustAppend(t, s, "Order$1", pmd.Any, ev("AfterUpgrade"))
	s = reopenUpgraded(t, s, &logs, open)
	if st := s.Stats(); st.Replayed != 0 {
		t.Fatalf("a clean reopen replayed %d records", st.Replayed)
	}
}

// TestOpensFormat2 opens a data directory written by the first version with the index
// on disk (testdata/format2, index layout 1), which exited without closing: this version
// rebuilds the index from the log once, logged as an upgrade (layout 1 has no marks for
// the events its deletions killed), gives the store an id, reads what that version
// read, less the dead events, and writes on.
func TestOpensFormat2(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "format2", &logs)
	if _, err := os.Stat(filepath.Join(dir, pmd.StoreIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the fixture has a store id already (%v)", err)
	}
	checkFormat(t, dir, 2)
	s := open()
	if !strings.Contains(logs.String(), "upgrading the index") {
		t.Fatalf("the index upgrade is not logged:\n%s", logs.String())
	}
	checkUpgradedFrom2(t, dir, &logs)
	checkFixture(t, s, want)
	id := s.ID()
	res := mustAppend(t, s, "Order$1", pmd.Any, ev("AfterUpgrade"))
	if err := s.SetRetention(context.Background(), "Order$1", pmd.Retention{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	s = reopenUpgraded(t, s, &logs, open)
	checkFormat(t, dir, 5)
	if s.ID() != id {
		t.Fatalf("store id %s after a reopen, %s before", s.ID(), id)
	}
	if got, _ := readStream(t, s, "Order$1", pmd.ReadOptions{}); len(got) != 1 || got[0].Position != res.LastPosition {
		t.Fatalf("Order$1 with max count 1 reads %v", ids(got))
	}
}

// TestOpensIndexLayout2 opens a data directory written with index layout 2
// (testdata/index2: a stream's state under a key of its own), which exited without
// closing: this version rebuilds the index from the log once, logged as an upgrade, reads
// what that version read, and writes on.
func TestOpensIndexLayout2(t *testing.T) {
	var logs lockedBuffer
	dir, want, open := openFixture(t, "index2", &logs)
	id, err := os.ReadFile(filepath.Join(dir, pmd.StoreIDFile))
	if err != nil {
		t.Fatal(err)
	}
	checkFormat(t, dir, 2)
	s := open()
	if !strings.Contains(logs.String(), "upgrading the index") {
		t.Fatalf("the index upgrade is not logged:\n%s", logs.String())
	}
	checkUpgradedFrom2(t, dir, &logs)
	// The log's offsets files move from beside the segments into log/offsets, where
	// they are read, not rebuilt.
	legacy, _ := filepath.Glob(filepath.Join(dir, "log", "*.offsets"))
	moved, _ := filepath.Glob(filepath.Join(dir, "log", "offsets", "*.offsets"))
	if len(legacy) != 0 || len(moved) == 0 || !strings.Contains(logs.String(), "offsets files into") {
		t.Fatalf("offsets files beside the segments %v, in log/offsets %v; log:\n%s", legacy, moved, logs.String())
	}
	checkFixture(t, s, want)
	if strings.Contains(logs.String(), "rebuilt offsets") {
		t.Fatalf("offsets rebuilt instead of moved:\n%s", logs.String())
	}
	if got := s.ID().String(); !strings.Contains(string(id), got) {
		t.Fatalf("store id %s after the upgrade, %s before", got, id)
	}
	res := mustAppend(t, s, "Order$1", pmd.Any, ev("AfterUpgrade"))
	s = reopenUpgraded(t, s, &logs, open)
	checkFormat(t, dir, 5)
	got, _ := readStream(t, s, "Order$1", pmd.ReadOptions{From: pmd.End, Backward: true, Limit: 1})
	if len(got) != 1 || got[0].Position != res.LastPosition {
		t.Fatalf("Order$1 read backward ends with %v, want the append at %d", ids(got), res.LastPosition)
	}
}

// TestOfflineToolsLeaveFormat2: pmd verify and the plan of pmd repair read a format 2
// data directory (testdata/format2) and write nothing to it: FORMAT stays 2, so the
// release that wrote it can still open it. Only an open that may write raises it.
func TestOfflineToolsLeaveFormat2(t *testing.T) {
	for _, fixture := range []string{"format2", "index2"} {
		t.Run(fixture, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", fixture, "data"))); err != nil {
				t.Fatal(err)
			}
			r, err := engine.Verify(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Format != 2 || !r.OK() {
				t.Fatalf("verify: format %d, problems %q", r.Format, r.Problems)
			}
			plan, err := engine.PlanRepair(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Close(); err != nil {
				t.Fatal(err)
			}
			checkFormat(t, dir, 2)
		})
	}
}
