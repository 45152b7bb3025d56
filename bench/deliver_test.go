package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/pm"
	"github.com/pmd-dev/pmd/server"
)

// The delivery benchmarks run what pmd serve runs for a process manager with a
// webhook: facts are appended, package pm issues one command per fact (one process
// each), and the dispatcher POSTs it through server.Webhooks to a local receiver
// (httptest), which notes when it arrived. Commands go to R receivers, by process id.
//
// Each case makes two runs, and reports over the healthy receivers:
//
//   - cmds/s: deliverFacts facts appended by deliverWriters writers as fast as they
//     can; commands delivered per second, from the first append to the last delivery;
//   - p50-ms, p99-ms: deliverPaced facts appended at deliverRate a second, well below
//     that throughput, so that no backlog builds up: the time from a fact's append
//     being made to its command reaching the receiver (the append, the process
//     manager's write, the dispatcher, the POST); the median of deliverRounds runs.
//
// Then the same again with one receiver more, which hangs (it never answers): its
// commands are spread like the others', and the healthy receivers' figures are
// reported as hang-cmds/s, hang-p50-ms and hang-p99-ms, and hang-p99-ratio, the
// healthy p99 with the hanging receiver over the p99 without, both of this run (the
// paced runs with and without it take turns).
// The store does not fsync (NoSync), so that the figures are those of delivery, not
// of the disk.

const (
	deliverFacts   = 4000
	deliverWriters = 8
	deliverPaced   = 1500
	deliverRate    = 300 // facts a second
	deliverRounds  = 3   // paced runs of each kind, in turns
)

// medianRun is the median of each figure of runs.
func medianRun(runs []deliveryRun) deliveryRun {
	var rates []float64
	var p50s, p99s []time.Duration
	for _, r := range runs {
		rates, p50s, p99s = append(rates, r.rate), append(p50s, r.p50), append(p99s, r.p99)
	}
	slices.Sort(rates)
	slices.Sort(p50s)
	slices.Sort(p99s)
	return deliveryRun{rate: rates[len(rates)/2], p50: p50s[len(p50s)/2], p99: p99s[len(p99s)/2]}
}

type deliverState struct{ Seen bool }

func deliverDef() pm.Definition[deliverState] {
	return pm.Definition[deliverState]{
		Name:      "Deliver",
		Handles:   []string{"Fact"},
		ProcessID: pm.DataField("id"),
		Init:      func(string) deliverState { return deliverState{} },
		Apply: func(s deliverState, e pmd.Event) deliverState {
			if e.Link {
				s.Seen = true
			}
			return s
		},
		Decide: func(s deliverState) []pm.Command {
			if s.Seen {
				return []pm.Command{{Type: "Do"}}
			}
			return nil
		},
	}
}

func BenchmarkDelivery(b *testing.B) {
	for _, receivers := range []int{1, 100} {
		b.Run(fmt.Sprintf("receivers=%d", receivers), func(b *testing.B) {
			benchDelivery(b, receivers, false, "cmds/s")
		})
	}
}

// BenchmarkSubscriptionDelivery is BenchmarkDelivery for subscriptions, on the same
// dispatcher: R subscriptions, each of a category of its own, each with its receiver,
// and the facts spread over the categories; each fact is one event delivered. With the
// hanging receiver, one subscription more never gets an answer.
func BenchmarkSubscriptionDelivery(b *testing.B) {
	for _, receivers := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscriptions=%d", receivers), func(b *testing.B) {
			benchDelivery(b, receivers, true, "events/s")
		})
	}
}

func benchDelivery(b *testing.B, receivers int, subs bool, unit string) {
	var healthy, hanging, healthyPaced, hangingPaced deliveryRun
	for range b.N {
		healthy = runDelivery(b, receivers, subs, false, 0)
		hanging = runDelivery(b, receivers, subs, true, 0)
		// The paced runs take turns, and each figure is the median of its runs: on a
		// shared machine one run's p99 can be another load's.
		var calm, stuck []deliveryRun
		for range deliverRounds {
			calm = append(calm, runDelivery(b, receivers, subs, false, deliverRate))
			stuck = append(stuck, runDelivery(b, receivers, subs, true, deliverRate))
		}
		healthyPaced, hangingPaced = medianRun(calm), medianRun(stuck)
	}
	b.ReportMetric(healthy.rate, unit)
	b.ReportMetric(ms(healthyPaced.p50), "p50-ms")
	b.ReportMetric(ms(healthyPaced.p99), "p99-ms")
	b.ReportMetric(hanging.rate, "hang-"+unit)
	b.ReportMetric(ms(hangingPaced.p50), "hang-p50-ms")
	b.ReportMetric(ms(hangingPaced.p99), "hang-p99-ms")
	b.ReportMetric(float64(hangingPaced.p99)/float64(healthyPaced.p99), "hang-p99-ratio")
}

type deliveryRun struct {
	rate     float64
	p50, p99 time.Duration
}

// runDelivery appends facts and waits until what the healthy receivers get (a command
// per fact, or with subs the fact itself) all arrived: deliverFacts as fast as
// deliverWriters writers can, or with rate, deliverPaced facts at rate a second from
// one writer. With hang, one receiver more never answers.
func runDelivery(b *testing.B, receivers int, subs, hang bool, rate int) deliveryRun {
	b.Helper()
	s, err := pmd.Open(b.TempDir(), pmd.Options{NoSync: true, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	appended := make(map[string]time.Time, deliverFacts) // when each fact's append was made
	arrived := make(map[string]time.Time, deliverFacts)
	done := make(chan struct{})
	facts, writers := deliverFacts, deliverWriters
	var tick *time.Ticker
	if rate > 0 {
		facts, writers = deliverPaced, 1
		tick = time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
	}
	want := 0
	healthy := func(id int) bool { return !hang || id%(receivers+1) != receivers }
	for i := range facts {
		if healthy(i) {
			want++
		}
	}
	var urls []string
	for range receivers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now()
			var body struct {
				ProcessID string `json:"process_id"` // a command's
				Data      struct {
					ID string `json:"id"` // an event's
				} `json:"data"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			id := cmp.Or(body.ProcessID, body.Data.ID)
			mu.Lock()
			if _, dup := arrived[id]; !dup {
				arrived[id] = now
				if len(arrived) == want {
					close(done)
				}
			}
			mu.Unlock()
		}))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	stuck := make(chan struct{})
	if hang {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stuck:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(stuck) // before the receiver closes: its handlers return
		urls = append(urls, srv.URL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	defer running.Wait()
	defer cancel()
	run := func(f func(context.Context) error) {
		running.Add(1)
		go func() {
			defer running.Done()
			if err := f(ctx); err != nil {
				b.Error(err)
			}
		}()
	}
	stream := func(i int) string { return "Facts$" + strconv.Itoa(i) }
	if subs {
		stream = func(i int) string { return fmt.Sprintf("F%d$%d", i%len(urls), i) }
		hooks := server.NewEventWebhooks(nil, time.Minute)
		for r, url := range urls {
			sub, err := pm.NewSubscription(s, fmt.Sprintf("S%d", r), pm.Filter{Category: fmt.Sprintf("F%d", r)}, pm.SubscriptionOptions{
				Logger: quiet(), Receiver: url,
				Deliver: func(ctx context.Context, e pmd.Event) error {
					return hooks.Deliver(ctx, url, server.NewWebhookEvent("S", e, false))
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			run(sub.Run)
		}
	} else {
		hooks := server.NewWebhooks(nil, time.Minute)
		m, err := pm.New(s, deliverDef(), pm.Options{
			Logger: quiet(),
			Receiver: func(c pm.Command) string {
				n, _ := strconv.Atoi(c.ProcessID)
				return urls[n%len(urls)]
			},
			Deliver: func(ctx context.Context, c pm.Command) error {
				n, _ := strconv.Atoi(c.ProcessID)
				return hooks.Deliver(ctx, urls[n%len(urls)], server.WebhookCommand{ID: c.ID.String(), Type: c.Type, ProcessID: c.ProcessID})
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		run(m.Run)
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < facts; i += writers {
				if tick != nil {
					<-tick.C
				}
				id := strconv.Itoa(i)
				mu.Lock()
				appended[id] = time.Now()
				mu.Unlock()
				_, err := s.Append(ctx, stream(i), pmd.Any, pmd.EventData{Type: "Fact", Data: map[string]any{"id": id}})
				if err != nil {
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
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("the healthy receivers did not get every command within 5 minutes")
	}
	took := time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for id, at := range arrived {
		n, _ := strconv.Atoi(id)
		if healthy(n) {
			lat = append(lat, at.Sub(appended[id]))
		}
	}
	slices.Sort(lat)
	return deliveryRun{
		rate: float64(len(lat)) / took.Seconds(),
		p50:  lat[len(lat)/2],
		p99:  lat[(len(lat)*99+99)/100-1],
	}
}
