package index

import (
	"testing"
)

// TestFormatVersionOfANewIndexIsDurable: a new index writes its format version, and a
// Flush and a Close leave it on disk whatever the index holds. It was written without a
// sync into the memtable, which pebble (its write-ahead log off) only writes out with
// other keys: an index that held no event (a log of retention records only) lost it, and
// the next open found a position without a format version and the index was rebuilt at
// every start.
func TestFormatVersionOfANewIndexIsDurable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(t *testing.T, x *Index)
	}{
		{"nothing applied", func(t *testing.T, x *Index) {}},
		{"a retention record", func(t *testing.T, x *Index) {
			b := x.NewBatch()
			if err := b.SetRetention(1, "X", Retention{MaxCount: 5}, 0); err != nil {
				t.Fatal(err)
			}
			if err := x.Apply(b); err != nil {
				t.Fatal(err)
			}
		}},
		{"events", func(t *testing.T, x *Index) { applyEvents(t, x, 1, 10) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			x, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			tc.apply(t, x)
			want := x.Position()
			if err := x.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				x, err := Open(dir, Options{})
				if err != nil {
					t.Fatalf("open %d after the first: %v", i+1, err)
				}
				got := x.Position()
				if err := x.Close(); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("open %d after the first: position %d, want %d", i+1, got, want)
				}
			}
		})
	}
}
