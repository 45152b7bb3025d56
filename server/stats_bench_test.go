package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// BenchmarkStats measures GET /v1/stats on a store of 100,000 streams and 1,000,000
// events (PMD_STATS_EVENTS sets another size, ten events a stream), after the store
// has counted them: what a dashboard polling it costs. It reports the time the store's
// counting pass took after the first call.
//
//	go test -run '^$' -bench Stats -benchtime 200x ./server/
func BenchmarkStats(b *testing.B) {
	events := 1_000_000
	if v := os.Getenv("PMD_STATS_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			b.Fatalf("PMD_STATS_EVENTS=%q: want a number of events, at least 10", v)
		}
		events = n
	}
	store, err := pmd.Open(b.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	const perStream, writers = 10, 8
	streams := events / perStream
	batch := make([]pmd.EventData, perStream)
	for i := range batch {
		batch[i] = pmd.EventData{Type: "Placed", Data: map[string]any{"n": i}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < streams; i += writers {
				if _, err := store.Append(ctx, fmt.Sprintf("Order$%d", i), pmd.NoStream, batch...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	srv := New(store, Options{Processes: &fakeProcesses{}, Commits: NewCommits(nil), Logger: quiet()})
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:7070/v1/stats", nil))
		if w.Code != http.StatusOK {
			b.Fatalf("GET /v1/stats: %d %s", w.Code, w.Body)
		}
		return w
	}
	start := time.Now()
	get()
	for !store.Stats().Counted {
		if time.Since(start) > 5*time.Minute {
			b.Fatal("the store did not count its events within 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	counted := time.Since(start)
	if st := store.Stats(); st.Events != uint64(streams*perStream) || st.Streams != uint64(streams) {
		b.Fatalf("counted %d events in %d streams, want %d in %d", st.Events, st.Streams, streams*perStream, streams)
	}
	for b.Loop() {
		get()
	}
	b.ReportMetric(counted.Seconds(), "s-to-count")
	b.ReportMetric(float64(b.Elapsed())/1e6/float64(b.N), "ms/stats")
}
