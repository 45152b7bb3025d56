package server

import (
	"fmt"
	"testing"

	"github.com/pmd-dev/pmd"
)

// BenchmarkDecodedBytes measures the bound of an event's decoded size taken before
// each event of a read is decoded (decodedBytes): of a typical event, and of a list of
// 20,000 small objects.
func BenchmarkDecodedBytes(b *testing.B) {
	for name, data := range map[string]map[string]any{
		"event": {"order": "o-1", "customer": "c-7", "total": 1234.5, "paid": true, "at": "2026-12-01T06:00:00Z",
			"lines": []any{map[string]any{"sku": "A-1", "qty": 2}, map[string]any{"sku": "B-2", "qty": 1, "note": nil}}},
		"list": {"l": repeated(20000, func(i int) any { return map[string]any{"a": i % 2, fmt.Sprint(i): "x"} })},
	} {
		enc, err := pmd.EncodeData(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodedBytes(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
