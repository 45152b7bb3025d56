package pmd_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestReadsRunningAtClose checks what Close's doc says of reads still running: a
// forward read of the global log (no type filter) goes on to the end it had when it
// began, every event correct and no error; every other read ends with ErrClosed (a
// subscription after the rest of the catch-up page it is reading).
func TestReadsRunningAtClose(t *testing.T) {
	const n = 5
	tests := []struct {
		name    string
		read    func(s *pmd.Store) iter.Seq2[pmd.Event, error]
		runsOut bool // serves all n events and no error
	}{
		{"ReadAll forward", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.ReadAll(context.Background(), pmd.ReadOptions{})
		}, true},
		{"ReadAll backward", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.ReadAll(context.Background(), pmd.ReadOptions{Backward: true, From: pmd.End})
		}, false},
		{"ReadAll by type", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.ReadAll(context.Background(), pmd.ReadOptions{Types: []string{"Placed"}})
		}, false},
		{"ReadStream", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.ReadStream(context.Background(), "Order$1", pmd.ReadOptions{})
		}, false},
		{"ReadCategory", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.ReadCategory(context.Background(), "Order", pmd.ReadOptions{})
		}, false},
		{"Subscribe", func(s *pmd.Store) iter.Seq2[pmd.Event, error] {
			return s.Subscribe(context.Background(), pmd.SubscribeOptions{})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			for i := range n {
				if _, err := s.Append(context.Background(), "Order$1", pmd.Any, pmd.EventData{Type: "Placed", Data: map[string]any{"i": i}}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			var last error
			for ev, err := range tt.read(s) {
				if err != nil {
					last = err
					break
				}
				got = append(got, fmt.Sprint(ev.Data["i"]))
				if len(got) == 1 {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.runsOut {
				if len(got) != n || last != nil {
					t.Fatalf("got %d events then %v, want all %d and no error", len(got), last, n)
				}
				for i, g := range got {
					if g != fmt.Sprint(i) {
						t.Fatalf("event %d has i %s", i, g)
					}
				}
				return
			}
			if !errors.Is(last, pmd.ErrClosed) {
				t.Fatalf("got %d events then %v, want ErrClosed", len(got), last)
			}
		})
	}
}
