package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// snapshotDir returns every file under dir with its bytes.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		m[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRepair: without --yes repair prints what it would do and changes nothing; with
// --yes it voids the damaged record, keeping its bytes in the quarantine file, and the
// store opens and serves every other event at its position.
func TestRepair(t *testing.T) {
	dir := storeDir(t)
	ctx := context.Background()
	// The last event of Kitchen$1 (position 61), the only event of its stream.
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		id     string
		stream string
	}
	before := make(map[uint64]ev)
	for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		before[e.Position] = ev{e.ID.String(), e.Stream}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const damaged = 61
	if before[damaged].stream != "Kitchen$1" {
		t.Fatalf("position %d holds %+v", damaged, before[damaged])
	}
	seg := segment(dir)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Find the entry of position 61 by framing the segment.
	off := 0
	for range damaged - 1 {
		n, k := uvarint(data[off:])
		off += k + n
	}
	n, k := uvarint(data[off:])
	flip(t, seg, int64(off+k+n-3))
	old, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	oldEntry := old[off : off+k+n]

	files := snapshotDir(t, dir)
	code, out, errOut := runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "a repair would\n  replace position 61 (segment "+seg) ||
		!strings.Contains(out, "remove the index") || !strings.Contains(out, "nothing changed") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	after := snapshotDir(t, dir)
	if len(after) != len(files) {
		t.Fatalf("the preview changed the files: %d before, %d after", len(files), len(after))
	}
	for path, b := range files {
		if after[path] != b {
			t.Fatalf("the preview changed %s", path)
		}
	}

	q := filepath.Join(t.TempDir(), "q.bin")
	code, out, errOut = runPMD(t, ctx, "repair", dir, "--yes", "--quarantine", q)
	if code != exitOK || !strings.Contains(out, "repaired; the removed bytes are in "+q) || strings.Contains(out, "scavenge") {
		t.Fatalf("exit %d, want the quarantine outside DIR named and no scavenge said to remove it:\n%s%s", code, out, errOut)
	}
	qb, err := os.ReadFile(q)
	if err != nil || !bytes.Contains(qb, oldEntry) {
		t.Fatalf("the quarantine file lacks the damaged record's bytes (%v)", err)
	}

	s, err = pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[uint64]ev)
	for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got[e.Position] = ev{e.ID.String(), e.Stream}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	delete(before, damaged)
	if len(got) != len(before) {
		t.Fatalf("read back %d events, want %d", len(got), len(before))
	}
	for p, e := range before {
		if got[p] != e {
			t.Fatalf("position %d holds %+v, want %+v", p, got[p], e)
		}
	}
	code, out, errOut = runPMD(t, ctx, "verify", dir)
	if code != exitOK || !strings.Contains(out, "1 voided by a repair") {
		t.Fatalf("verify after the repair: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func uvarint(b []byte) (n, k int) {
	var x uint64
	var s uint
	for i, c := range b {
		if c < 0x80 {
			return int(x | uint64(c)<<s), i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

// TestRepairDefaultQuarantine: --yes without --quarantine keeps the removed bytes in
// DIR/quarantine-<time>.bin, and says so, and that a scavenge of a store that has erased
// data removes it; flags may follow the directory.
func TestRepairDefaultQuarantine(t *testing.T) {
	dir := storeDir(t)
	appendBytes(t, segment(dir), []byte{0x50, 1, 2, 3})
	code, out, errOut := runPMD(t, context.Background(), "repair", dir, "--yes")
	if code != exitOK || !strings.Contains(out, "cut 4 bytes") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	qs, _ := filepath.Glob(filepath.Join(dir, "quarantine-*Z.bin"))
	if len(qs) != 1 || !strings.Contains(out, "the removed bytes are in "+qs[0]) {
		t.Fatalf("quarantine files %v:\n%s", qs, out)
	}
	if want := "the next scavenge of a store that has erased data removes " + qs[0] + ": copy it out of " + dir + " to keep it"; !strings.Contains(out, want) {
		t.Fatalf("pmd repair printed %q, want %q", out, want)
	}
}

func TestRepairUsage(t *testing.T) {
	dir := storeDir(t)
	for _, args := range [][]string{
		{"repair"},
		{"repair", dir, dir},
		{"repair", "--quarantine", "q.bin", dir},
		{"repair", "--bogus", dir},
	} {
		code, _, errOut := runPMD(t, context.Background(), args...)
		if code != exitUsage || errOut == "" {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
	}
}

func TestRepairRefusesAnOpenStore(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, _, errOut := runPMD(t, context.Background(), "repair", "--yes", dir)
	if code != exitTrouble || !strings.Contains(errOut, "is in use by another pmd") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestRepairOfAClusterNodeSaysItsCopyDiffers: pmd repair of a cluster node's data
// directory (one with raft/) that voids a damaged record says that this node's copy of
// the store will then differ from the cluster's, which holds the event, and recommends
// rebuilding the node from the cluster; a single node's repair says nothing of it.
func TestRepairOfAClusterNodeSaysItsCopyDiffers(t *testing.T) {
	for _, node := range []bool{false, true} {
		dir := storeDir(t)
		if node {
			if err := os.Mkdir(filepath.Join(dir, "raft"), 0o750); err != nil {
				t.Fatal(err)
			}
		}
		seg := segment(dir)
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for range 61 - 1 {
			n, k := uvarint(data[off:])
			off += k + n
		}
		n, k := uvarint(data[off:])
		flip(t, seg, int64(off+k+n-3))
		code, out, errOut := runPMD(t, context.Background(), "repair", dir)
		said := strings.Contains(out, "this node's copy of the store will differ from the cluster's") && strings.Contains(out, "remove it from the cluster with pmd cluster remove and its node id, then start it with an empty data directory")
		if code != exitOK || !strings.Contains(out, "replace position 61") || said != node {
			t.Fatalf("cluster node %v: exit %d, says this copy differs: %v, want %v:\n%s%s", node, code, said, node, out, errOut)
		}
	}
}
