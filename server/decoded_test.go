package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/jsonfloat"
)

// allocatedBy is the bytes fn allocates on the heap.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func repeated(n int, v func(i int) any) []any {
	l := make([]any, n)
	for i := range l {
		l[i] = v(i)
	}
	return l
}

// decodedShapes are event data whose decoded form takes many times its stored bytes,
// and some that take about as much.
func decodedShapes() map[string]map[string]any {
	const n = 20000
	keys := map[string]any{}
	for i := range n {
		keys[fmt.Sprint(i)] = nil
	}
	nested := any(int64(1))
	for range 200 {
		nested = []any{nested}
	}
	nestedMaps := any(int64(1))
	for range 200 {
		nestedMaps = map[string]any{"a": nestedMaps}
	}
	return map[string]map[string]any{
		"small integers":        {"l": repeated(n, func(int) any { return int64(0) })},
		"large integers":        {"l": repeated(n, func(i int) any { return int64(i) << 40 })},
		"unsigned":              {"l": repeated(n, func(i int) any { return uint64(1)<<63 + uint64(i) })},
		"empty objects":         {"l": repeated(n, func(int) any { return map[string]any{} })},
		"small objects":         {"l": repeated(n, func(i int) any { return map[string]any{"a": i % 2} })},
		"whole floats":          {"l": repeated(n, func(int) any { return float64(2) })},
		"whole floats inside":   {"l": repeated(n, func(int) any { return map[string]any{"f": 3.0, "g": []any{1.0}} })},
		"float32s":              {"l": repeated(n, func(int) any { return float32(2) })},
		"fractions":             {"l": repeated(n, func(int) any { return 2.5 })},
		"empty strings":         {"l": repeated(n, func(int) any { return "" })},
		"short strings":         {"l": repeated(n, func(int) any { return "x" })},
		"strings of 17":         {"l": repeated(n, func(int) any { return strings.Repeat("y", 17) })},
		"empty lists":           {"l": repeated(n, func(int) any { return []any{} })},
		"nulls and booleans":    {"l": repeated(n, func(i int) any { return []any{nil, true, false}[i%3] })},
		"bytes":                 {"l": repeated(n, func(int) any { return []byte("ab") })},
		"times":                 {"l": repeated(n, func(i int) any { return time.Unix(int64(i), 7).UTC() })},
		"many keys":             keys,
		"one long string":       {"s": strings.Repeat("z", 1<<20)},
		"one of 5 MiB":          {"s": strings.Repeat("z", 5<<20), "b": []byte(strings.Repeat("b", 3<<20))},
		"strings growing":       {"l": repeated(400, func(i int) any { return strings.Repeat("g", i*100) })},
		"nested lists":          {"l": nested},
		"nested objects":        {"m": nestedMaps},
		"keys not strings":      {"m": map[int]int{1: 2, 3: 4}, "l": repeated(n, func(int) any { return map[string]any{} })},
		"keys not strings last": {"l": append(repeated(100, func(int) any { return strings.Repeat("k", 10<<10) }), map[int]int{1: 2})},
		"many keys not strings": {"m": func() map[int]int {
			m := map[int]int{}
			for i := range n {
				m[i] = i
			}
			return m
		}()},
		"floats in objects":                {"l": repeated(n, func(int) any { return map[string]any{"f": 1.0} })},
		"one of 9 MiB":                     {"s": strings.Repeat("n", 9<<20)},
		"one of 9 MiB, a key not a string": {"l": []any{strings.Repeat("n", 9<<20), map[int]int{1: 2}}},
	}
}

// TestDecodedBytesBoundsDecoding: decodedBytes, found without decoding, is at least what
// decoding data takes, and toJSON's marking of its whole floats, for data of every
// shape, however much more than its stored bytes that is, and at most 3 times it: a
// bound that over-counts refuses reads the budget has room for (an empty object was
// counted 736 bytes and took 64, so an event of 400,000 of them was bound to 320 MB).
func TestDecodedBytesBoundsDecoding(t *testing.T) {
	for name, data := range decodedShapes() {
		t.Run(name, func(t *testing.T) {
			enc, err := pmd.EncodeData(data)
			if err != nil {
				t.Fatal(err)
			}
			bound, err := decodedBytes(enc)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			took := allocatedBy(func() {
				if m, err = pmd.DecodeData(enc); err != nil {
					t.Fatal(err)
				}
				m = jsonfloat.MarkMap(m)
			})
			runtime.KeepAlive(m)
			if int64(took) > bound {
				t.Errorf("decoding %d stored bytes took %d bytes, more than decodedBytes's %d", len(enc), took, bound)
			}
			// Past 1 MiB what a decode allocates depends on the buffer of the decoder
			// msgpack's pool hands it (what decoded before), which the bound assumes
			// grown from nothing.
			if len(enc) < 1<<20 && bound > 3*int64(took) {
				t.Errorf("decoding %d stored bytes took %d bytes, decodedBytes's %d is more than 3 times that", len(enc), took, bound)
			}
			t.Logf("%d stored bytes, %d decoded, bound %d (%.1fx)", len(enc), took, bound, float64(bound)/float64(max(took, 1)))
		})
	}
	for _, b := range [][]byte{{0x91}, {0xd9, 5, 'a'}, {0xc1}, {0xdd, 0xff, 0xff}} {
		if _, err := decodedBytes(b); err == nil {
			t.Errorf("decodedBytes(% x) = nil error, want the msgpack named bad", b)
		}
	}
}

// TestPagesHoldDecodedData: a page's events are decoded into bytes reserved of the
// memory budget, as their JSON is, by many readers at once. The data decoded was held
// by none: an event of 5,000 empty objects is 15 KB of JSON and decodes into about 2 MB,
// so readers at once took the daemon past its budget by that much each, unrefused.
func TestPagesHoldDecodedData(t *testing.T) {
	e := newEnv(t, Options{})
	objects := repeated(5000, func(int) any { return map[string]any{} })
	for range 3 {
		e.append("Big$1", nil, ev("E", map[string]any{"l": objects})).must(t, http.StatusCreated)
	}
	enc, err := pmd.EncodeData(map[string]any{"l": objects})
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	took := int64(allocatedBy(func() { decoded, _ = pmd.DecodeData(enc) }))
	runtime.KeepAlive(decoded)
	limit := e.srv.memory.limit

	var mu sync.Mutex
	var calls int
	var short []string
	hook := func(held int64, capacity int) {
		total := e.srv.memory.Held()
		mu.Lock()
		defer mu.Unlock()
		calls++
		if held < int64(capacity)+took {
			short = append(short, fmt.Sprintf("held %d for a buffer of %d and an event that decoded into %d", held, capacity, took))
		}
		if total > limit+held {
			short = append(short, fmt.Sprintf("all requests held %d, beyond the budget's %d and this one's %d", total, limit, held))
		}
	}
	e.srv.hooks.heldEncoded = hook

	paths := []string{"/v1/streams/Big%241", "/v1/streams/Big%241?direction=backward", "/v1/all", "/v1/categories/Big", "/v1/streams/$all?limit=1"}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			rec := e.serve(httptest.NewRequest("GET", paths[i%len(paths)], nil))
			if rec.Code != http.StatusOK || len(rec.Body.String()) < 15000 {
				t.Errorf("GET %s: %d %.200s", paths[i%len(paths)], rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if calls < 16 {
		t.Fatalf("%d events written, want at least 16", calls)
	}
	if len(short) > 0 {
		t.Fatalf("%d of %d events decoded into bytes not reserved: %s", len(short), calls, short[0])
	}
	if h := e.srv.memory.Held(); h != 0 {
		t.Fatalf("%d bytes held after the answers", h)
	}
}
