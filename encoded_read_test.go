package pmd_test

import (
	"context"
	"iter"
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd"
)

// TestEncodedReads: a read with Encoded set gives each event's data and metadata as the
// store keeps them, undecoded, Data and Metadata nil; decoded, they are what the same
// read without it gives. An erased event has none. Reads by id take it
// as EventOptions (EventWith, CausedSeqWith).
func TestEncodedReads(t *testing.T) {
	ctx := context.Background()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := map[string]any{"l": []any{int64(1), "two", map[string]any{"three": 3.5}}}
	meta := map[string]any{pmd.CorrelationID: "c"}
	first, err := s.Append(ctx, "Order$1", pmd.Any, pmd.EventData{Type: "A", Data: data, Metadata: meta}, pmd.EventData{Type: "B"})
	if err != nil {
		t.Fatal(err)
	}
	caused := pmd.EventData{Type: "D", Data: data, Metadata: map[string]any{pmd.CausationID: first.IDs[0].String()}}
	if _, err := s.Append(ctx, "Order$2", pmd.Any, caused); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "Gone$1", pmd.Any, pmd.EventData{Type: "C", Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseStream(ctx, "Gone$1"); err != nil {
		t.Fatal(err)
	}
	reads := map[string]func(encoded bool) iter.Seq2[pmd.Event, error]{
		"stream": func(e bool) iter.Seq2[pmd.Event, error] {
			return s.ReadStream(ctx, "Order$1", pmd.ReadOptions{Encoded: e})
		},
		"all": func(e bool) iter.Seq2[pmd.Event, error] { return s.ReadAll(ctx, pmd.ReadOptions{Encoded: e}) },
		"all backward": func(e bool) iter.Seq2[pmd.Event, error] {
			return s.ReadAll(ctx, pmd.ReadOptions{Encoded: e, Backward: true, From: pmd.End})
		},
		"types": func(e bool) iter.Seq2[pmd.Event, error] {
			return s.ReadAll(ctx, pmd.ReadOptions{Encoded: e, Types: []string{"A", "C"}})
		},
		"category": func(e bool) iter.Seq2[pmd.Event, error] {
			return s.ReadCategory(ctx, "Order", pmd.ReadOptions{Encoded: e})
		},
		"by id": func(e bool) iter.Seq2[pmd.Event, error] {
			return func(yield func(pmd.Event, error) bool) {
				for _, id := range first.IDs {
					if !yield(s.EventWith(ctx, id, pmd.EventOptions{Encoded: e})) {
						return
					}
				}
			}
		},
		"caused": func(e bool) iter.Seq2[pmd.Event, error] {
			return s.CausedSeqWith(ctx, first.IDs[0], pmd.EventOptions{Encoded: e})
		},
		"subscription": func(e bool) iter.Seq2[pmd.Event, error] {
			return func(yield func(pmd.Event, error) bool) {
				n := 0
				for ev, err := range s.Subscribe(ctx, pmd.SubscribeOptions{Encoded: e}) {
					if !yield(ev, err) || err != nil {
						return
					}
					if n++; n == 3 {
						return
					}
				}
			}
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			var want []pmd.Event
			for ev, err := range read(false) {
				if err != nil {
					t.Fatal(err)
				}
				if d, m := ev.Encoded(); d != nil || m != nil {
					t.Fatalf("a read without Encoded gave encoded data: %x %x", d, m)
				}
				want = append(want, ev)
			}
			i := 0
			for ev, err := range read(true) {
				if err != nil {
					t.Fatal(err)
				}
				if ev.Data != nil || ev.Metadata != nil {
					t.Fatalf("event %d: an Encoded read decoded its data: %v %v", ev.Position, ev.Data, ev.Metadata)
				}
				d, m := ev.Encoded()
				if ev.Erased && (d != nil || m != nil) {
					t.Fatalf("erased event %d has encoded data: %x %x", ev.Position, d, m)
				}
				if ev.Data, err = pmd.DecodeData(d); err != nil {
					t.Fatal(err)
				}
				if ev.Metadata, err = pmd.DecodeData(m); err != nil {
					t.Fatal(err)
				}
				w := want[i]
				if w.Erased {
					ev.Data, ev.Metadata = nil, nil
				}
				// Compare all but the unexported encoded bytes.
				ev2 := pmd.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata, Timestamp: ev.Timestamp,
					Position: ev.Position, Stream: ev.Stream, Version: ev.Version, Link: ev.Link, Erased: ev.Erased}
				if !reflect.DeepEqual(ev2, w) {
					t.Fatalf("event %d decoded: %+v, want %+v", i, ev2, w)
				}
				i++
			}
			if i != len(want) || i == 0 {
				t.Fatalf("%d events read with Encoded, %d without", i, len(want))
			}
		})
	}
}

// Store.Event and Store.CausedSeq keep the types they had before EventOptions: code
// that holds them as func values or behind an interface of its own (pm's eventByID)
// stopped compiling when they took variadic options.
var (
	_ func(*pmd.Store, context.Context, uuid.UUID) (pmd.Event, error)          = (*pmd.Store).Event
	_ func(*pmd.Store, context.Context, uuid.UUID) iter.Seq2[pmd.Event, error] = (*pmd.Store).CausedSeq
)
