package server

import (
	"net/http"
	"slices"
	"testing"
)

var _ ProcessPager = (*pagedProcesses)(nil)

// TestProcessRouteAsksForABoundedPage: the process route hands the bound of its pages
// in bytes to the ProcessPager, so that a page of large events is cut as it is read
// (GET ?limit=1000 of a process whose events are 1 MiB each held up to 1000 of them and
// their states, cut to PageBytes only then), and answers within it.
func TestProcessRouteAsksForABoundedPage(t *testing.T) {
	const pageBytes = 64 << 10
	f := &pagedProcesses{sizes: slices.Repeat([]int{40 << 10}, 50)}
	e := newEnv(t, Options{PageBytes: pageBytes, Processes: f})
	r := e.do("GET", "/v1/processes/M/1?limit=1000", nil).must(t, http.StatusOK)
	if got := f.asked.Load(); got != pageBytes {
		t.Fatalf("the route asked for a page of %d bytes, want PageBytes, %d", got, pageBytes)
	}
	evs, _ := r.body["events"].([]any)
	if len(evs) != 1 || len(r.raw) > pageBytes {
		t.Fatalf("a page of %d bytes with %d events, want one event of 40 KiB within %d", len(r.raw), len(evs), pageBytes)
	}
	if older := r.body["older"]; older == nil {
		t.Fatal("no older page")
	}
}
