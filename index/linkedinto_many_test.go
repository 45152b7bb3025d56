package index_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pmd-dev/pmd/index"
)

// TestLinkedIntoManyLinks: LinkedInto of an event linked into many streams takes time
// in proportion to its links. It searched the streams found so far for each link, to
// list a stream linked twice once: an event linked into 200,000 streams took over 10
// minutes of CPU, under the index's shared lock, for GET /v1/events/{id} (whose
// request timeout does not stop it) and for the commit of a link made beside a deletion.
// A stream linked twice while visible still comes once, at its last link.
func TestLinkedIntoManyLinks(t *testing.T) {
	x, err := index.Open(t.TempDir(), index.Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const n = 20_000
	b := x.NewBatch()
	b.AddEvent(1, uuid.MustParse("0190a1c4-0000-7000-8000-000000000001"), "Src$1", "E")
	want := make([]string, 0, n)
	for i := range n {
		stream := fmt.Sprintf("Cart$%07d", i)
		if _, err := b.AddLink(uint64(2+i), stream, 1); err != nil {
			t.Fatal(err)
		}
		want = append(want, stream)
		if i%10_000 == 0 {
			if err := x.Apply(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Linked again while visible, as the index allows: it comes once, last.
	if _, err := b.AddLink(n+2, "Cart$0000000", 1); err != nil {
		t.Fatal(err)
	}
	want = append(want[1:], "Cart$0000000")
	if err := x.Apply(b); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	got, err := x.LinkedInto(nil, 1)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("LinkedInto gave %d streams (%q ... %q), want %d, each once at its last link", len(got), got[:min(2, len(got))], got[max(0, len(got)-2):], len(want))
	}
	// A quarter second with -race on two busy cores in proportion to the links; the
	// search of the streams found so far took 13 s without -race and 23 s with it.
	t.Logf("LinkedInto of an event linked into %d streams: %s", n, took)
	if took > 4*time.Second {
		t.Fatalf("LinkedInto of an event linked into %d streams took %s", n, took)
	}
}
