package pmd_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/pmd-dev/pmd"
)

// TestNonFiniteNumbersAreRefused: JSON has no NaN nor infinity, so an event holding one
// could be neither served over HTTP nor delivered: the store refuses it, wherever it is
// in the data or the metadata, naming the field, and writes nothing.
func TestNonFiniteNumbersAreRefused(t *testing.T) {
	type money struct{ Amount float64 }
	amount := math.Inf(-1)
	tests := []struct {
		name     string
		data     map[string]any
		metadata map[string]any
		arg      string
		reason   string
	}{
		{"infinity", map[string]any{"ratio": math.Inf(1)}, nil, "events[1].data.ratio", "+Inf is not a JSON number"},
		{"NaN", map[string]any{"ratio": math.NaN()}, nil, "events[1].data.ratio", "NaN is not a JSON number"},
		{"float32", map[string]any{"ratio": float32(math.Inf(-1))}, nil, "events[1].data.ratio", "-Inf is not a JSON number"},
		{"in a list in a map", map[string]any{"order": map[string]any{"lines": []any{1.5, math.NaN()}}}, nil, "events[1].data.order.lines[1]", "NaN"},
		{"in a typed slice", map[string]any{"weights": []float64{1, math.Inf(1)}}, nil, "events[1].data.weights[1]", "+Inf"},
		{"in a struct behind a pointer", map[string]any{"price": &money{Amount: amount}}, nil, "events[1].data.price.Amount", "-Inf"},
		{"in the metadata", nil, map[string]any{"score": math.Inf(1)}, "events[1].metadata.score", "+Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.Append(context.Background(), "Ship$1", pmd.Any,
				pmd.EventData{Type: "Fine", Data: map[string]any{"ratio": 0.5, "max": math.MaxFloat64}},
				pmd.EventData{Type: "ShipOrder", Data: tt.data, Metadata: tt.metadata})
			var inv *pmd.InvalidArgumentError
			if !errors.As(err, &inv) || !errors.Is(err, pmd.ErrInvalidArgument) {
				t.Fatalf("err = %v, want an InvalidArgumentError", err)
			}
			if inv.Arg != tt.arg || !strings.Contains(inv.Reason, tt.reason) {
				t.Errorf("error %q names %q, want %q with %q", err, inv.Arg, tt.arg, tt.reason)
			}
			if s.LastPosition() != 0 {
				t.Errorf("a refused append wrote something: last position %d", s.LastPosition())
			}
		})
	}
}
