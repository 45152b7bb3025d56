package server

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestStateBytesBoundsStates: stateBytes is at least what a state holds of the heap, for
// states of the shapes definitions keep (a map of the events' data, a struct of maps,
// slices and a time as config's processes keep, lists of objects with whole floats,
// which jsonfloat.Mark copies to write), and ends on a state that points back at itself.
func TestStateBytesBoundsStates(t *testing.T) {
	type last struct {
		ID, Type string
		Data     map[string]any
	}
	type configState struct {
		Seen      map[string]int
		Data      map[string]any
		Issued    []string
		Last      last
		Events    int
		First     time.Time
		Completed bool
	}
	type node struct {
		next *node
		name string
	}
	for _, tt := range []struct {
		name string
		make func() any
	}{
		{"map of ints", func() any {
			m := map[string]any{}
			for i := range 2000 {
				m[fmt.Sprintf("k%d", i)] = i
			}
			return m
		}},
		{"config's state", func() any {
			s := configState{Seen: map[string]int{}, Data: map[string]any{}, First: time.Now()}
			for i := range 500 {
				s.Seen[fmt.Sprintf("T%d", i)]++
				s.Data[fmt.Sprintf("field%d", i)] = fmt.Sprintf("value %d", i)
				s.Issued = append(s.Issued, fmt.Sprintf("C%d", i))
			}
			s.Last = last{ID: "x", Type: "T", Data: map[string]any{"a": 1.5}}
			return &s
		}},
		{"objects with whole floats", func() any {
			l := make([]any, 0, 1000)
			for i := range 1000 {
				l = append(l, map[string]any{"n": float64(i), "s": "ab"})
			}
			return map[string]any{"l": l}
		}},
		{"a cycle", func() any {
			a := &node{name: "a"}
			a.next = &node{next: a, name: "b"}
			return a
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			v := tt.make()
			runtime.GC()
			runtime.ReadMemStats(&after)
			held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			if n := stateBytes(v); n < held {
				t.Errorf("stateBytes %d, less than the %d bytes of heap the state holds", n, held)
			}
			runtime.KeepAlive(v)
		})
	}
}
