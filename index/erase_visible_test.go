package index

import "testing"

// TestEraseVisibleWithItsPosition: a reader that sees the position of a batch with an
// erase record sees the erasure too. The store answers a writer before Apply and has a
// read wait only until Position reaches the write (Store.visible), so an erase mark that
// came after Position served the erased data to a read after EraseStream returned. The
// batch's applied hook reads as such a reader would, once Position has moved. The first
// two cases fail with the erase mark made known after Position; the third (the stream's
// name known from an earlier erasure) checks that the raised mark shows with Position.
func TestEraseVisibleWithItsPosition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // streams erased by earlier batches, below version 1
		stream string
		below  uint64
	}{
		{name: "the first erasure of the index", stream: "S", below: 2},
		{name: "a stream never erased, others were", before: []string{"A", "B"}, stream: "S", below: 2},
		{name: "an erased stream erased further", before: []string{"S"}, stream: "S", below: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := openTest(t, t.TempDir())
			b := x.NewBatch()
			for _, s := range tc.before {
				if err := b.Erase(b.Position()+1, s, 1); err != nil {
					t.Fatal(err)
				}
				if err := x.Apply(b); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Erase(b.Position()+1, tc.stream, tc.below); err != nil {
				t.Fatal(err)
			}
			pos, called := b.Position(), false
			b.applied = func() {
				called = true
				if x.Position() != pos {
					t.Errorf("Position %d in the applied hook, want %d", x.Position(), pos)
				}
				if !x.Erased(tc.stream, tc.below-1) {
					t.Errorf("%s@%d reads as not erased at position %d, which holds its erasure", tc.stream, tc.below-1, pos)
				}
			}
			if err := x.Apply(b); err != nil {
				t.Fatal(err)
			}
			if !called {
				t.Fatal("Apply did not call the applied hook")
			}
		})
	}
}
