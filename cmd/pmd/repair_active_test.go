package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestRepairCutsAZeroedBlockInTheActiveSegment: a zeroed block in the middle of the log's
// last segment, with events appended after it, leaves the store down: the start refuses
// it, and pmd repair said "this damage cannot be repaired". Now pmd verify names pmd
// repair, whose preview says which positions the cut loses and that acknowledged writes
// are among them, and that the next start fills them with void records; --yes cuts,
// keeping the bytes in the quarantine; the store opens with every event before the
// damage, reports the loss, and gives the next event the position after the lost ones;
// a second repair finds nothing to do.
func TestRepairCutsAZeroedBlockInTheActiveSegment(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := pmd.Options{NoSync: true, NoScrub: true, Logger: quiet()}
	s, err := pmd.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(map[uint64]string)
	for i := range 30 {
		res, err := s.Append(ctx, fmt.Sprintf("Order$%d", i%3), pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"i": i}})
		if err != nil {
			t.Fatal(err)
		}
		ids[res.FirstPosition] = idAt(t, s, res.FirstPosition).String()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := segment(dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := 0; off < len(b); {
		n, k := binary.Uvarint(b[off:])
		offs = append(offs, off)
		off += k + int(n)
	}
	if len(offs) != 30 {
		t.Fatalf("%d entries in %s, want 30", len(offs), seg)
	}
	// From 5 bytes into the entry of position 10 to 5 bytes into that of 12.
	clear(b[offs[9]+5 : offs[11]+5])
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if s, err := pmd.Open(dir, opts); err == nil {
		s.Close()
		t.Fatal("the damaged store opened")
	}

	code, out, errOut := runPMD(t, ctx, "verify", dir)
	if code != exitFailed || !strings.Contains(out, "pmd repair") {
		t.Fatalf("verify: exit %d, want the damage, naming pmd repair:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "a repair would\n  cut") ||
		!strings.Contains(out, "positions 10 to 30 are lost, among them records of writes acknowledged") ||
		!strings.Contains(out, "fill positions 10 to 30 with void records at the next start") ||
		!strings.Contains(out, "nothing changed") {
		t.Fatalf("repair preview: exit %d:\n%s%s", code, out, errOut)
	}
	q := filepath.Join(t.TempDir(), "q.bin")
	code, out, errOut = runPMD(t, ctx, "repair", dir, "--yes", "--quarantine", q)
	if code != exitOK || !strings.Contains(out, "repaired; the removed bytes are in "+q) {
		t.Fatalf("repair --yes: exit %d:\n%s%s", code, out, errOut)
	}
	if qb, err := os.ReadFile(q); err != nil || !bytes.HasSuffix(qb, append(b[offs[9]:], '\n')) {
		t.Fatalf("the quarantine lacks the bytes from the damaged entry on (%v)", err)
	}

	s, err = pmd.Open(dir, opts)
	if err != nil {
		t.Fatalf("open after the repair: %v", err)
	}
	got := make(map[uint64]string)
	for e, err := range s.ReadAll(ctx, pmd.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got[e.Position] = e.ID.String()
	}
	if len(got) != 9 {
		t.Errorf("read back %d events, want the 9 before the damage", len(got))
	}
	for p := uint64(1); p <= 9; p++ {
		if got[p] != ids[p] {
			t.Errorf("position %d holds %q, want %q", p, got[p], ids[p])
		}
	}
	if p := s.Problems(); len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "position 10 to 30 are lost") {
		t.Errorf("problems %q, want the loss of positions 10 to 30", p)
	}
	res, err := s.Append(ctx, "Order$0", pmd.Any, pmd.EventData{Type: "Placed"})
	if err != nil || res.FirstPosition != 31 {
		t.Errorf("the next event: %+v, %v; want it at position 31", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runPMD(t, ctx, "repair", dir)
	if code != exitOK || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("repair after the repair: exit %d:\n%s", code, out)
	}
}

// TestRepairOfADamagedStoreIDSaysWhatToDo: a STORE_ID that does not read, which the
// start fails on and pmd verify reports, is not something pmd repair changes, but it
// said "nothing to repair" and exited 0. It now says what to do and exits 1.
func TestRepairOfADamagedStoreIDSaysWhatToDo(t *testing.T) {
	dir := storeDir(t)
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(dir, "STORE_ID"), []byte("garbage\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPMD(t, ctx, "repair", dir)
	if code != exitFailed || strings.Contains(out, "nothing to repair\n") || !strings.Contains(out, "nothing in the log to repair") ||
		!strings.Contains(errOut, `"garbage\n" is not a store id`) || !strings.Contains(errOut, "removing the file gives the store a new id") {
		t.Fatalf("repair: exit %d, want 1 and what to do about STORE_ID:\n%s%s", code, out, errOut)
	}
}
