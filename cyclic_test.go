package pmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// tree is data whose slices may share elements.
type tree struct {
	Name string
	Kids []tree
}

// node is data that can refer to itself.
type node struct {
	S    string
	A, B *node
}

// TestAppendRefusesDataThatHoldsItself: data that refers back to a value holding it
// cannot be written (msgpack and JSON would never end); the walks that check data ran
// until the stack overflowed, which ends the program, whatever called Append. It is
// refused as an invalid argument naming where, and nothing is written.
func TestAppendRefusesDataThatHoldsItself(t *testing.T) {
	self := map[string]any{"k": 1}
	self["self"] = self
	list := []any{1, nil}
	list[1] = list
	n := &node{S: "ok"}
	n.A, n.B = n, n // two ways back: a walk without memory takes 2^depth paths
	deep := map[string]any{"n": &node{A: &node{A: n}}}
	shared := &node{S: "twice"} // held twice, but not by itself: written twice
	// A slice holding a shorter slice of its own front: the same address, not itself.
	arena := make([]tree, 3)
	arena[1].Kids = arena[:1]
	front := []any{"x", nil}
	front[1] = front[:1]
	for _, tt := range []struct {
		name string
		data map[string]any
		want string // in the error; "" for no error
	}{
		{"a map holding itself", map[string]any{"m": self}, "data.m.self"},
		{"a slice holding itself", map[string]any{"l": list}, "data.l[1]"},
		{"a struct pointer to itself", map[string]any{"n": n}, "data.n.A"},
		{"deeper down", deep, "data.n.A.A.A"},
		{"a value held twice", map[string]any{"a": shared, "b": []any{shared, shared}}, ""},
		{"a slice holding its own front", map[string]any{"nodes": arena, "l": front}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, "")
			_, err := s.Append(context.Background(), "s", pmd.Any, pmd.EventData{Type: "E", Data: tt.data})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				return
			}
			var ia *pmd.InvalidArgumentError
			if !errors.As(err, &ia) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "holds itself") {
				t.Fatalf("Append: %v; want an invalid argument naming %s that holds itself", err, tt.want)
			}
			if info, err := s.StreamInfo("s"); err != nil || info.Exists {
				t.Fatalf("after the refusal the stream is %+v, %v; want none: nothing written", info, err)
			}
		})
	}
}
