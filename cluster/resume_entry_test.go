package cluster

import (
	"context"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/pmd-dev/pmd"
)

// TestResumeAnEntryOfSeveralWrites: a node whose store holds only the first write of an
// entryWrites entry (a power cut lost the rest of its unsynced records) restarts with the
// store's Applied at that entry. Raft hands it the entry again: the node applies the
// writes the store lacks, not the one it holds, instead of passing over the entry as
// applied.
func TestResumeAnEntryOfSeveralWrites(t *testing.T) {
	w := writes(t, "Order$1", 3)
	tests := []struct {
		name   string
		resume bool // the node started with the store at the entry (Node's start sets it)
		events int
	}{
		{name: "the entry handed again at start", resume: true, events: 3},
		{name: "an entry applied since the start", resume: false, events: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, f, _ := replica(t, RulesVersion)
			// What the power cut left: the entry's first write.
			for _, o := range s.ApplyWrites(context.Background(), []pmd.ReplicatedWrite{{Index: 5, Slot: 0, Timestamp: 1, Write: w[0]}}) {
				must(t, o.Err)
			}
			f.applied.Store(s.Applied())
			if tt.resume {
				f.resume = s.Applied()
			}
			out := f.ApplyBatch([]*raft.Log{entry(t, 5, entryWrites, &writesEntry{Rules: RulesVersion,
				Writes: []writeItem{{Timestamp: 1, Write: w[0]}, {Timestamp: 2, Write: w[1]}, {Timestamp: 3, Write: w[2]}}})})
			if o, ok := out[0].(*writesOutcome); ok {
				for _, wo := range o.outs {
					must(t, wo.err)
				}
			} else if tt.resume {
				t.Fatalf("the entry's outcome is %T, want its writes'", out[0])
			}
			if got := streamLen(t, s, "Order$1"); got != tt.events {
				t.Fatalf("Order$1 holds %d events, want %d", got, tt.events)
			}
			if f.resume != 0 || f.applied.Load() != 5 {
				t.Fatalf("after the entry: resume %d, applied %d; want 0 and 5", f.resume, f.applied.Load())
			}
		})
	}
}

// TestDowngradedNodeAtAnEntryOfSeveralWrites: a node restarted with an older pmd (rules
// 2) whose store ends in an entry of several writes stamped with newer rules (3) passes
// over that entry when the store holds all its writes, as it passes over every entry it
// applied, and goes on with the next; when the store holds only its first writes (a
// power cut), it refuses the entry and halts: the others are not its to decide by older
// rules.
func TestDowngradedNodeAtAnEntryOfSeveralWrites(t *testing.T) {
	w := writes(t, "Order$1", 4)
	stamped3 := entry(t, 5, entryWrites, &writesEntry{Rules: 3,
		Writes: []writeItem{{Timestamp: 1, Write: w[0]}, {Timestamp: 2, Write: w[1]}, {Timestamp: 3, Write: w[2]}}})
	next := entry(t, 6, entryWrite, &writeEntry{Timestamp: 4, Write: w[3], Rules: 2})
	for _, tt := range []struct {
		name   string
		held   int  // the entry's writes the store holds at the restart
		halts  bool // the node refuses the entry
		events int  // Order$1's events after the entries
	}{
		{name: "whole", held: 3, events: 4},
		{name: "its first write alone", held: 1, halts: true, events: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, f, halted := replica(t, 2)
			var ws []pmd.ReplicatedWrite
			for j := range tt.held {
				ws = append(ws, pmd.ReplicatedWrite{Index: 5, Slot: uint32(j), Timestamp: int64(j + 1), Write: w[j]})
			}
			for _, o := range s.ApplyWrites(context.Background(), ws) {
				must(t, o.Err)
			}
			// The node's start under the older pmd, as Start sets it.
			f.applied.Store(s.Applied())
			f.resume = s.Applied()
			f.ApplyBatch([]*raft.Log{stamped3, next})
			if got := len(*halted) > 0; got != tt.halts {
				t.Fatalf("halted %v, want a halt: %v", *halted, tt.halts)
			}
			if got := streamLen(t, s, "Order$1"); got != tt.events {
				t.Fatalf("Order$1 holds %d events, want %d", got, tt.events)
			}
		})
	}
}
