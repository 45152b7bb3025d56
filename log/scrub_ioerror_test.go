package log

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
)

// An I/O error in one segment (a bad sector: here a directory in the file's place) does
// not stop Scrub: it reports the damage of every other segment, and the error names the
// segment it could not read. It stopped there, and the damage after it went unfound.
func TestScrubGoesOnPastAnUnreadableSegment(t *testing.T) {
	opts := Options{NoSync: true, SegmentSize: 500}
	dir, _, damaged := damagedLog(t, opts)
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	segs := l.Segments()
	bad := segs[1]
	if err := os.Remove(bad.Path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bad.Path, 0o750); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, p := range damaged {
		if p < bad.First || p >= bad.First+uint64(bad.Count) {
			want = append(want, p)
		}
	}
	found, err := l.Scrub(context.Background(), nil)
	var got []uint64
	for _, ce := range found {
		got = append(got, ce.Position)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Scrub found damage at %v, want %v", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), bad.Path) {
		t.Errorf("Scrub: %v, want the error naming %s", err, bad.Path)
	}
}
