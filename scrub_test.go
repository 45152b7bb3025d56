package pmd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestScrubIsPaced: the background scrub of the log reads no faster than
// ScrubBytesPerSecond, so that a large log's check does not take the writers' share of
// the machine; a negative rate lets it go as fast as it can.
func TestScrubIsPaced(t *testing.T) {
	dir := t.TempDir()
	s, err := pmd.Open(dir, pmd.Options{NoSync: true, NoScrub: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<10)
	for i := range 200 { // about 13 MiB of log: three progress steps of 4 MiB
		mustAppend(t, s, "Big$1", pmd.Any, ev("Filled", "i", i, "pad", big))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const rate = 8 << 20
	for _, tc := range []struct {
		rate    int64
		atLeast time.Duration
	}{
		// The pace is checked at each 4 MiB read: the third check, at 12 MiB, is due at
		// 1.5 s.
		{rate: rate, atLeast: 1500 * time.Millisecond},
		{rate: -1},
	} {
		start := time.Now()
		s, err := pmd.Open(dir, pmd.Options{NoSync: true, ScrubBytesPerSecond: tc.rate, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		select {
		case <-s.Scrubbed():
		case <-ctx.Done():
			t.Fatalf("rate %d: the scrub did not finish in a minute", tc.rate)
		}
		cancel()
		took := time.Since(start)
		if took < tc.atLeast {
			t.Errorf("rate %d B/s: the scrub of %d bytes took %v, want at least %v", tc.rate, 200*len(big), took, tc.atLeast)
		}
		if p := s.Problems(); len(p) != 0 {
			t.Errorf("rate %d: problems %v", tc.rate, p)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
