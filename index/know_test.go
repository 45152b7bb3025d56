package index

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// A batch handed a stream's state with Know takes it instead of reading the index: the
// store's committer reads a new stream's state to plan its write, and the applier's batch
// read it again (bench/README.md, session 23). A state the batch holds already stays.
func TestBatchTakesTheStateItIsHanded(t *testing.T) {
	add := func(t *testing.T, x *Index, b *Batch, stream string, n int) {
		t.Helper()
		for range n {
			if _, err := b.AddEvent(b.Position()+1, uuid.New(), stream, "T"); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		held     bool   // the batch read the stream itself before Know
		wantNext uint64 // the stream's next version as the batch sees it
	}{
		{"handed", false, 3},      // Load's state: the index's is 5 by now
		{"held already", true, 5}, // its own, read after the two appends
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := openTest(t, t.TempDir())
			w := x.NewBatch()
			add(t, x, w, "Order-1", 3)
			st, loaded, err := x.Load("Order-1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Next != 3 || !st.Exists {
				t.Fatalf("Load: %+v, want Next 3", st)
			}
			// Another batch moves the stream on, which the caller of Know vouches
			// never happens: it shows whether the batch read the index.
			add(t, x, w, "Order-1", 2)
			b := x.NewBatch()
			if tt.held {
				if _, err := b.Stream("Order-1"); err != nil {
					t.Fatal(err)
				}
			}
			b.Know("Order-1", loaded)
			got, err := b.Stream("Order-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Next != tt.wantNext {
				t.Errorf("the batch's Next is %d, want %d", got.Next, tt.wantNext)
			}
		})
	}
	t.Run("bad name", func(t *testing.T) {
		x := openTest(t, t.TempDir())
		b := x.NewBatch()
		b.Know("a\x00b", Loaded{})
		if _, err := b.Stream("a\x00b"); err == nil || !strings.Contains(err.Error(), "0 byte") {
			t.Errorf("Stream of a name with a 0 byte after Know: %v, want the batch's refusal", err)
		}
	})
}
