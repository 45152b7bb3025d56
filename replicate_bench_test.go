package pmd

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkCheckWire measures the check every node makes of a replicated write's events
// (checkWire, which walks their data and metadata, plainMap), for a write of 16 events.
func BenchmarkCheckWire(b *testing.B) {
	w := wireWrite{Stream: "Order-1"}
	for i := range 16 {
		w.Changes = append(w.Changes, wireChange{ID: uuid.New(), Type: "OrderPlaced",
			Data: mustMsgpack(b, map[string]any{"order": fmt.Sprint("o-", i), "customer": "c-7", "total": 1234.5,
				"lines": []any{map[string]any{"sku": "A-1", "qty": 2}, map[string]any{"sku": "B-2", "qty": 1, "note": nil}},
				"paid":  true, "at": "2026-12-01T06:00:00Z"}),
			Meta: mustMsgpack(b, map[string]any{"user": "u-1", "correlation": uuid.NewString()})})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := checkWire(&w); err != nil {
			b.Fatal(err)
		}
	}
}
