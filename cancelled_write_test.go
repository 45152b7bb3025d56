package pmd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestWriteWithADoneContextWritesNothing: a write given a context that is already done
// fails with the context's error and writes nothing, every time (the request was queued
// at random, half the time, and still answered as failed: a retry then wrote it twice).
func TestWriteWithADoneContextWritesNothing(t *testing.T) {
	s := openStore(t, t.TempDir())
	live := context.Background()
	e, err := s.Append(live, "Origin-1", pmd.Any, pmd.EventData{Type: "T"})
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(live)
	cancel()
	for range 100 {
		for name, write := range map[string]func() error{
			"Append":       func() error { _, err := s.Append(done, "P-1", pmd.Any, pmd.EventData{Type: "T"}); return err },
			"Link":         func() error { _, err := s.Link(done, "L-1", pmd.Any, e.IDs[0]); return err },
			"DeleteStream": func() error { return s.DeleteStream(done, "Origin-1", pmd.Any) },
			"SetRetention": func() error { return s.SetRetention(done, "Origin-1", pmd.Retention{MaxCount: 1}) },
			"EraseStream":  func() error { return s.EraseStream(done, "Origin-1") },
		} {
			if err := write(); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a done context: %v, want context.Canceled", name, err)
			}
		}
	}
	if last := s.LastPosition(); last != e.LastPosition {
		t.Fatalf("the log ends at position %d, want %d: writes with a done context were stored", last, e.LastPosition)
	}
}

// TestReadOfAnEmptyStreamNameIsRefused: ReadStream and StreamInfo refuse a stream name
// the store could never hold, as every other call does, rather than report it missing.
func TestReadOfAnEmptyStreamNameIsRefused(t *testing.T) {
	s := openStore(t, t.TempDir())
	var ia *pmd.InvalidArgumentError
	for _, err := range s.ReadStream(context.Background(), "", pmd.ReadOptions{}) {
		if !errors.As(err, &ia) || ia.Arg != "stream" {
			t.Fatalf("ReadStream(\"\"): %v, want an invalid argument stream", err)
		}
	}
	if _, err := s.StreamInfo(""); !errors.As(err, &ia) || ia.Arg != "stream" {
		t.Fatalf("StreamInfo(\"\"): %v, want an invalid argument stream", err)
	}
}
