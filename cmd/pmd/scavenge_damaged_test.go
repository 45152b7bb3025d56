package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/damagetest"
)

// TestScavengeCommandPastADamagedSegment: pmd scavenge on a store with a damaged record
// scavenges the other segments, prints what it did, and fails (exit 1, damage found)
// naming the damage, so that the user knows a segment kept its bytes until a repair.
func TestScavengeCommandPastADamagedSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, Logger: quiet(), SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 500)
	appendOne := func(stream string, data string) {
		t.Helper()
		if _, err := s.Append(ctx, stream, pmd.Any, pmd.EventData{Type: "T", Data: map[string]any{"d": data}}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne("Old", "BITROT-IN-THIS-RECORD")
	for range 10 {
		appendOne("Filler", pad)
	}
	appendOne("Customer$7", "Secret Lane")
	for range 10 {
		appendOne("Filler", pad)
	}
	if err := s.EraseStream(ctx, "Customer$7"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damagetest.FlipIn(t, dir, "BITROT-IN-THIS-RECORD")

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"scavenge", dir, "--rate", "0"}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "1 damaged segment(s) kept as they were") {
		t.Errorf("pmd scavenge exited %d with %q, want %d and the damaged segment named", code, stderr.String(), exitFailed)
	}
	if out := stdout.String(); !strings.Contains(out, "1 erased") {
		t.Errorf("pmd scavenge printed %q, want what it did in the other segments: 1 erased", out)
	}
}
