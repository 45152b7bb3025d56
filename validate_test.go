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
	type tagged struct {
		Cents float64 `msgpack:"amount_cents,omitempty"`
	}
	type line struct {
		tagged
		Qty int
	}
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
		{"in a field named by its msgpack tag", map[string]any{"price": tagged{Cents: math.NaN()}}, nil, "events[1].data.price.amount_cents", "NaN"},
		{"in an embedded struct, inlined as msgpack does", map[string]any{"lines": []line{{}, {tagged: tagged{Cents: amount}}}}, nil, "events[1].data.lines[1].amount_cents", "-Inf"},
		{"in the metadata", nil, map[string]any{"score": math.Inf(1)}, "events[1].metadata.score", "+Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAppendRefused(t, "Ship$1",
				pmd.EventData{Type: "Fine", Data: map[string]any{"ratio": 0.5, "max": math.MaxFloat64}},
				pmd.EventData{Type: "ShipOrder", Data: tt.data, Metadata: tt.metadata}, tt.arg, tt.reason)
		})
	}
}

// checkAppendRefused appends fine and then bad to stream in a new store in one call,
// and checks that the store refuses the append with an InvalidArgumentError that names
// arg and says reason, and writes nothing of it.
func checkAppendRefused(t *testing.T, stream string, fine, bad pmd.EventData, arg, reason string) {
	t.Helper()
	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Append(context.Background(), stream, pmd.Any, fine, bad)
	var inv *pmd.InvalidArgumentError
	if !errors.As(err, &inv) || !errors.Is(err, pmd.ErrInvalidArgument) {
		t.Fatalf("err = %v, want an InvalidArgumentError", err)
	}
	if inv.Arg != arg || !strings.Contains(inv.Reason, reason) {
		t.Errorf("error %q names %q, want %q with %q", err, inv.Arg, arg, reason)
	}
	if s.LastPosition() != 0 {
		t.Errorf("a refused append wrote something: last position %d", s.LastPosition())
	}
}

// TestNonFiniteLooksWhereMsgpackEncodes: a field msgpack skips (tagged "-", or unexported)
// is not stored, so a NaN in it is no reason to refuse the event.
func TestNonFiniteLooksWhereMsgpackEncodes(t *testing.T) {
	type cached struct {
		Total   float64
		Ratio   float64 `msgpack:"-"`
		scratch float64
	}
	tests := []struct {
		name  string
		v     any
		path  string
		found bool
	}{
		{"skipped field", cached{Total: 1, Ratio: math.NaN(), scratch: math.Inf(1)}, "", false},
		{"encoded field", &cached{Total: math.Inf(1)}, ".Total", true},
		{"the value itself", math.NaN(), "", true},
		{"nested JSON", map[string]any{"a": []any{"x", map[string]any{"b": math.Inf(-1)}}}, ".a[1].b", true},
		{"typed map", map[string][]float32{"w": {1, float32(math.NaN())}}, ".w[1]", true},
		{"nil", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _, found := pmd.NonFinite(tt.v)
			if path != tt.path || found != tt.found {
				t.Errorf("NonFinite = %q, %v; want %q, %v", path, found, tt.path, tt.found)
			}
		})
	}

	s, err := pmd.Open(t.TempDir(), pmd.Options{NoSync: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(context.Background(), "Ship$1", pmd.Any, pmd.EventData{Type: "Cached",
		Data: map[string]any{"c": cached{Total: 2, Ratio: math.NaN()}}}); err != nil {
		t.Errorf("an event whose only NaN is in a field msgpack skips was refused: %v", err)
	}
}

// TestNonFiniteChecksJSONDataWithoutAllocating: Append checks every event's data, so
// the data HTTP decodes (maps, lists, strings, numbers, booleans, null) is walked
// without reflection, which allocates.
func TestNonFiniteChecksJSONDataWithoutAllocating(t *testing.T) {
	data := map[string]any{
		"order_id": int64(42), "total": 12.5, "paid": true, "note": nil, "raw": []byte("x"),
		"lines": []any{map[string]any{"sku": "A-1", "qty": int64(2), "price": 3.25}},
		"tags":  []string{"new"}, "ratio": float32(0.5),
	}
	if allocs := testing.AllocsPerRun(100, func() {
		if _, _, found := pmd.NonFinite(data); found {
			t.Fatal("found a non-finite number in finite data")
		}
	}); allocs != 0 {
		t.Errorf("NonFinite of JSON data allocates %v times, want 0", allocs)
	}
}

func BenchmarkNonFinite(b *testing.B) {
	data := map[string]any{
		"order_id": int64(42), "total": 12.5, "customer": "c-17",
		"lines": []any{map[string]any{"sku": "A-1", "qty": int64(2), "price": 3.25}},
	}
	for b.Loop() {
		pmd.NonFinite(data)
	}
}
