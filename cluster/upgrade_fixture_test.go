package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// fixtureEvent is an event as the HTTP API of the pmd that wrote testdata/node1 served it.
type fixtureEvent struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Data     map[string]any `json:"data"`
	Position uint64         `json:"position"`
	Stream   string         `json:"stream"`
	Version  *uint64        `json:"version"`
	Erased   bool           `json:"erased"`
}

// readFixtureStream reads stream ($all too) of s as fixtureEvents, with the version only
// for a stream's read, as the HTTP API gives it.
func readFixtureStream(t *testing.T, s *pmd.Store, stream string) []fixtureEvent {
	t.Helper()
	read := s.ReadStream(context.Background(), stream, pmd.ReadOptions{})
	if stream == "$all" {
		read = s.ReadAll(context.Background(), pmd.ReadOptions{})
	}
	var out []fixtureEvent
	for e, err := range read {
		if errors.Is(err, pmd.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		// Through JSON, as the fixture's were: numbers as float64, and no data (an
		// erased event's) as {}.
		data := e.Data
		if data == nil {
			data = map[string]any{}
		}
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		f := fixtureEvent{ID: e.ID.String(), Type: e.Type, Position: e.Position, Stream: e.Stream, Erased: e.Erased}
		if err := json.Unmarshal(b, &f.Data); err != nil {
			t.Fatal(err)
		}
		if stream != "$all" {
			v := e.Version
			f.Version = &v
		}
		out = append(out, f)
	}
	return out
}

// TestNodeOpensAnOlderNodesDirectory starts a one-node cluster on the data directory
// (raft/ included) that a node of pmd at e9267e0 left (testdata/node1: before rules
// stamps, cluster ids and format 3; Raft snapshots and a log of entries after the
// newest one, which the start replays over a store that holds them): it leads, reads
// every stream and $all as that version did (a retention, an erasure and a deletion
// included), takes a write at the next position, keeps it across a restart without
// applying any entry twice, and pmd verify finds the directory clean.
func TestNodeOpensAnOlderNodesDirectory(t *testing.T) {
	var want map[string][]fixtureEvent
	b, err := os.ReadFile(filepath.Join("testdata", "node1", "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "node1", "data"))); err != nil {
		t.Fatal(err)
	}
	check := func(s *pmd.Store) {
		t.Helper()
		for stream, w := range want {
			if got := readFixtureStream(t, s, stream); !reflect.DeepEqual(got, w) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(w)
				t.Errorf("%s reads\n%s\nwant (what the older node read)\n%s", stream, gb, wb)
			}
		}
		if got := readFixtureStream(t, s, "Tmp$1"); len(got) != 0 {
			t.Errorf("the deleted Tmp$1 reads %v", got)
		}
	}
	last := want["$all"][len(want["$all"])-1].Position

	s, n := startOne(t, dir, Config{})
	check(s)
	res, err := s.Append(context.Background(), "Order$9", pmd.Any, pmd.EventData{Type: "Shipped", Data: map[string]any{"i": 100}})
	if err != nil {
		t.Fatal(err)
	}
	if res.LastPosition != last+1 {
		t.Errorf("the first write after the upgrade landed at position %d, want %d", res.LastPosition, last+1)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, n = startOne(t, dir, Config{})
	got := readFixtureStream(t, s, "Order$9")
	if len(got) != 2 || got[1].Position != res.LastPosition || got[1].Type != "Shipped" {
		t.Errorf("Order$9 reads %+v after a restart, want the write at %d last", got, res.LastPosition)
	}
	if s.LastPosition() != res.LastPosition {
		t.Errorf("the log ends at %d after a restart, want %d", s.LastPosition(), res.LastPosition)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := engine.Verify(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Errorf("pmd verify after the upgrade: %v", r.Problems)
	}
}
