package cluster

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/engine"
)

// memberDir is the data directory of a one-node cluster (run in this process) that
// applied n writes, stopped.
func memberDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, node := startOne(t, dir, Config{})
	for i := range n {
		if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, node.Close())
	must(t, s.Close())
	return dir
}

// appendSingle opens dir's store as a single node does and appends one event to it.
func appendSingle(t *testing.T, dir string) {
	t.Helper()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Single"}); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
}

// startErr starts a node on dir, as the member n1 it was, and returns why it did not
// start (nil if it did: it is then stopped).
func startErr(t *testing.T, dir string) error {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: logger})
	must(t, err)
	defer s.Close()
	n, err := Start(context.Background(), Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", Dir: dir, Store: s, Logger: logger,
		Fatal: func(err error) { t.Errorf("node stopped: %v", err) }})
	if err == nil {
		must(t, n.Close())
	}
	return err
}

// TestMemberData: a data directory with Raft state, or whose store's last write came
// from a Raft entry, is a cluster node's, which a single node refuses; a single node's
// (empty, or written by a single node) is not; Leave takes the Raft state away.
func TestMemberData(t *testing.T) {
	member := memberDir(t, 2)
	noState := memberDir(t, 2)
	must(t, Leave(noState, false))
	if _, err := os.Stat(filepath.Join(noState, engine.RaftDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Leave kept the Raft state: %v", err)
	}
	single := t.TempDir()
	appendSingle(t, single)
	onlyRaft := t.TempDir()
	must(t, os.Mkdir(filepath.Join(onlyRaft, engine.RaftDir), 0o750))
	for _, tt := range []struct {
		name, dir, want string
	}{
		{"a member's", member, "it holds Raft state"},
		{"a member's without its Raft state", noState, "its store's last write was applied from Raft entry"},
		{"an empty Raft state", onlyRaft, "it holds Raft state"},
		{"a single node's", single, ""},
		{"an empty one", t.TempDir(), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pmd.Open(tt.dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
			must(t, err)
			defer s.Close()
			err = MemberData(tt.dir, s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMemberData) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrMemberData saying %q", err, tt.want)
			}
		})
	}
}

// TestStartRefusesAStoreWrittenWithoutRaft: a member whose store a single node wrote to
// (its last write has no Raft index, earlier ones have) does not start: Raft would apply
// again every entry after its snapshot. Nor does one whose Raft state was removed while
// its store's last write has a Raft index: a new cluster's entries would be passed over
// as held. A member's own store, and a store a single node wrote to after its Raft state
// was removed (which may seed a new cluster), start.
func TestStartRefusesAStoreWrittenWithoutRaft(t *testing.T) {
	written := memberDir(t, 2)
	appendSingle(t, written)
	removed := memberDir(t, 2)
	must(t, os.RemoveAll(filepath.Join(removed, engine.RaftDir)))
	left := memberDir(t, 2)
	must(t, Leave(left, false))
	appendSingle(t, left)
	// A directory left and written by a single node, then seeding a cluster: its
	// records up to the seed's position are the old cluster's (Raft indexes), then the
	// single node's (none). Only records above the seed were written by this cluster.
	seeded := memberDir(t, 2)
	must(t, Leave(seeded, false))
	appendSingle(t, seeded)
	s, node := startOne(t, seeded, Config{}) // leads once the seed entry is applied
	must(t, node.Close())
	must(t, s.Close())
	for _, tt := range []struct {
		name, dir, want string
	}{
		{"written by a single node", written, "its last write carries no Raft index, though an earlier one does"},
		{"without its Raft state", removed, "this node has no Raft state, but its store's last write was applied from Raft entry"},
		{"its own", memberDir(t, 2), ""},
		{"left, then written by a single node", left, ""},
		{"left, written by a single node, seeded, restarted", seeded, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := raftTree(t, tt.dir)
			err := startErr(t, tt.dir)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			// A refused start leaves the Raft state as it was: an empty raft/ left
			// behind made the next start (and a single node) take the directory for
			// a member's with Raft state.
			if after := raftTree(t, tt.dir); !maps.Equal(after, before) {
				t.Fatalf("the refused start changed raft/: %v, was %v", after, before)
			}
		})
	}
}

// raftTree lists the files and directories under dir's raft/ with their sizes (-1 for
// a directory), nil if there is no raft/.
func raftTree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	root := filepath.Join(dir, engine.RaftDir)
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	tree := map[string]int64{}
	must(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		size := int64(-1)
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			size = info.Size()
		}
		tree[path] = size
		return nil
	}))
	return tree
}

// TestMemberDataPassesOverDamagedRecords: a single node's store with a damaged record
// near its end is still a single node's (pmd serve opens it and serves the damage as
// corrupt): MemberData reads its intact commit records, not the damaged one.
func TestMemberDataPassesOverDamagedRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	for i := range 10 {
		if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	must(t, s.Close())
	seg := filepath.Join(dir, "log", "00000000000000000001")
	b, err := os.ReadFile(seg)
	must(t, err)
	b[5*71+40] ^= 0xff
	must(t, os.WriteFile(seg, b, 0o640))

	s, err = pmd.Open(dir, pmd.Options{NoScrub: true, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	defer s.Close()
	if err := MemberData(dir, s); err != nil {
		t.Fatalf("a single node's store with a damaged record: %v", err)
	}
	if err := checkApplied(s, "n1", 0, true, 0); err != nil {
		t.Fatalf("checkApplied on a store without Raft indexes, with a damaged record: %v", err)
	}
}
