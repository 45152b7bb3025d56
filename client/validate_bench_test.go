package client

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAppendValidate times the UTF-8 check of an append's data against encoding it
// (as the client does, without HTML escaping) in the same run, reported as check/encode:
// 100,000 structs, each with a map of strings (a map[string]string, or a type of its
// own, which the check walks by reflection), about 7 MB of JSON.
func BenchmarkAppendValidate(b *testing.B) {
	type tags map[string]string
	type item struct {
		ID   int               `json:"id"`
		Name string            `json:"name"`
		Tags map[string]string `json:"tags"`
	}
	type namedItem struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
		Tags tags   `json:"tags"`
	}
	items := make([]item, 100_000)
	named := make([]namedItem, len(items))
	for i := range items {
		n := strconv.Itoa(i)
		items[i] = item{ID: i, Name: "item " + n, Tags: map[string]string{"colour": "blue", "owner": "user" + n}}
		named[i] = namedItem{ID: i, Name: items[i].Name, Tags: tags(items[i].Tags)}
	}
	for _, bb := range []struct {
		name string
		data map[string]any
	}{
		{"map[string]string", map[string]any{"items": items}},
		{"named map", map[string]any{"items": named}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var buf bytes.Buffer
			var check, encode time.Duration
			for b.Loop() {
				start := time.Now()
				if _, what, found := invalidUTF8(bb.data); found {
					b.Fatal(what)
				}
				check += time.Since(start)
				buf.Reset()
				start = time.Now()
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(bb.data); err != nil {
					b.Fatal(err)
				}
				encode += time.Since(start)
			}
			b.ReportMetric(float64(buf.Len())/1e6, "MB")
			b.ReportMetric(check.Seconds()*1e3/float64(b.N), "check-ms/op")
			b.ReportMetric(encode.Seconds()*1e3/float64(b.N), "encode-ms/op")
			b.ReportMetric(float64(check)/float64(encode), "check/encode")
		})
	}
}
